/* Reads the tab-separated table rows of the Part 1 seed text, for comparison tests. */
#ifndef MSP_TEST_SEED_H
#define MSP_TEST_SEED_H

#define SEED_MAX_ROWS 128

typedef struct seed_row {
    char ref[32];
    char text[1024]; /* <b> markup (the seed's bold) removed */
    char col3[32];   /* "Mandatory"/"Optional", or the label */
    char col4[8];    /* "Y"/"N", or "" */
} seed_row_t;

/**
 * Collects the rows of every table between the first line containing from
 * and the next line containing to (the header rows "Ref ..." excluded).
 * Returns the number of rows, or -1 if the seed cannot be read or a marker
 * is missing.
 */
int seed_rows(const char *from, const char *to, seed_row_t *rows, int max);

#endif
