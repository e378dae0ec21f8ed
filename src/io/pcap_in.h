/* Inside the library: the libpcap handle of a capture, for drivers that read it themselves (ets_workers.c). */
#ifndef MSP_IO_PCAP_IN_H
#define MSP_IO_PCAP_IN_H

#include <pcap/pcap.h>

#include "msp/ets_pcap.h"

pcap_t *pcap_in_pcap(msp_pcap_in_t *in);
/** The file or interface name, as errors say it. */
const char *pcap_in_name(const msp_pcap_in_t *in);

#endif
