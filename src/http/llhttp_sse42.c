// llhttp's generated parser once more, compiled with -msse4.2: it then scans header names and
// values 16 bytes at a time instead of byte by byte. Its global functions carry a prefix (see
// CMakeLists.txt) so this copy links beside the portable one; the codec calls
// confgate_sse42_llhttp__internal_execute only on a CPU that has SSE4.2.
#include "llhttp_sse42_renames.h"

#include "llhttp.c"
