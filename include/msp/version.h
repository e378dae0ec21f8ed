/* The library's version, for programs that load libmsp.so and want to know which one they got. */
#ifndef MSP_VERSION_H
#define MSP_VERSION_H

#include "msp/api.h"

/** "MAJOR.MINOR.PATCH" of the libmsp in use (not of the headers compiled against). Never NULL. */
MSP_API const char *msp_version(void);

#endif
