/* placeholder until the daemon lands */
int psycgate_placeholder(void);
int psycgate_placeholder(void) { return 0; }
