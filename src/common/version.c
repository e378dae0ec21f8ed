/* Compiled into libmsp itself (not a layer), where CMake passes the project version. */
#include "msp/version.h"

const char *msp_version(void)
{
    return MSP_VERSION;
}
