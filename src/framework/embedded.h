/* Data files compiled into the binary by cmake/embed.cmake. */
#ifndef MSP_FW_EMBEDDED_H
#define MSP_FW_EMBEDDED_H

#include <stddef.h>

typedef struct msp_embedded {
    const char *name; /* file name without directory and extension */
    const char *data; /* NUL-terminated; len excludes the NUL */
    size_t len;
} msp_embedded_t;

/* Both tables end with an entry whose name is NULL. */
extern const msp_embedded_t msp_fw_catalog_data[];
extern const msp_embedded_t msp_fw_profile_data[];

#endif
