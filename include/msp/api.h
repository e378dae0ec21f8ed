/*
 * What libmsp exports. The library is built with -fvisibility=hidden: a
 * function is part of the ABI only when its declaration in include/msp/
 * carries MSP_API, and tests/integration/symbols.sh fails on any exported
 * name that no public header declares.
 */
#ifndef MSP_API_H
#define MSP_API_H

#define MSP_API __attribute__((visibility("default")))

#endif
