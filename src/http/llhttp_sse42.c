// llhttp's generated parser once more, compiled with -msse4.2: it then scans header names and
// values 16 bytes at a time instead of byte by byte. Its global functions carry a prefix (see
// CMakeLists.txt) so this copy links beside the portable one. Only run it on a CPU that has
// SSE4.2: the codec (and the tests that compare the two builds) ask the CPU first.
#include "llhttp_sse42_renames.h"

#include "llhttp.c"
