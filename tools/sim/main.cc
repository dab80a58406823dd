#include "simulator.h"
int main() { return 0; }
