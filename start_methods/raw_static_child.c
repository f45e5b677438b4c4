// The raw child of spawn_benchmark's floor: linked with -static, so exec maps it and jumps to it
// with no dynamic loader; main exits at once.
#include <unistd.h>

int main(void) { _exit(0); }
