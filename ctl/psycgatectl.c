#include <stdio.h>
int main(void) { puts("psycgatectl: not yet"); return 0; }
