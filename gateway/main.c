#include <stdio.h>
int main(void) { puts("psycgate: not yet"); return 0; }
