/*
 * Entity addresses. The reference keeps the text and splits it only when
 * it connects; splitting here puts a bad address on its line in the file.
 * Forms: scheme://host[:port] (the only one with a port; the scheme is
 * ignored), a bare host name, an IPv4 or IPv6 literal, and for the client a
 * MAC address (it only goes into the ClientHello).
 * On the wire an Address is type (URL 0, FQDN 1, IPv4 2, IPv6 3, MAC 4) and
 * opaque bytes; "the tools classify strings with :// as URL" and "use
 * tlmsp://host:port (scheme ignored when connecting)" (tlmsp-handshake.md 1.8;
 * no ETSI TS 103 523-2 clause is given by the write-up).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cfg_internal.h"

#define HOST_MAX 255

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static bool is_mac(const char *s)
{
    if (strlen(s) != 17) {
        return false;
    }
    for (size_t i = 0; i < 17; i++) {
        bool ok = i % 3 == 2 ? s[i] == ':' : is_hex(s[i]);
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool is_ipv6(const char *s, size_t len)
{
    char buf[64];
    struct in6_addr a;
    if (len == 0 || len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

/* Letters, digits, '.', '-' and '_' (the reference's own example uses client_hostname). */
static bool is_hostname(const char *s, size_t len)
{
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                  c == '_';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static int put_host(const char *s, size_t len, char *host, size_t cap)
{
    if (len >= cap || len > HOST_MAX) {
        return MSP_ERR_LIMIT;
    }
    memcpy(host, s, len);
    host[len] = '\0';
    return MSP_OK;
}

static int parse_port(const char *s, uint16_t *port, const char **why)
{
    unsigned v = 0;
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || n > 5) {
            *why = "the port must be a number from 1 to 65535 and nothing may follow it";
            return MSP_ERR_SYNTAX;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (n == 0 || v == 0 || v > 65535) {
        *why = "the port must be a number from 1 to 65535";
        return MSP_ERR_SYNTAX;
    }
    *port = (uint16_t)v;
    return MSP_OK;
}

/* What follows "scheme://": host or [v6], then perhaps :port, then nothing. */
static int parse_authority(const char *a, char *host, size_t cap, uint16_t *port, const char **why)
{
    const char *h = a;
    size_t hlen;
    const char *rest;
    bool v6 = a[0] == '[';
    if (v6) {
        const char *close = strchr(a, ']');
        h = a + 1;
        hlen = close != NULL ? (size_t)(close - h) : 0;
        rest = close != NULL ? close + 1 : "";
        if (close == NULL || !is_ipv6(h, hlen)) {
            *why = "the host in brackets must be an IPv6 address";
            return MSP_ERR_SYNTAX;
        }
    } else {
        hlen = strcspn(a, ":");
        rest = a + hlen;
        if (!is_hostname(h, hlen)) {
            /* Covers a path or query (the reference drops them) and an IPv6 host without brackets. */
            *why = "the host must be a name or an IPv4 address, or an IPv6 address in brackets, with nothing after "
                   "the port";
            return MSP_ERR_SYNTAX;
        }
    }
    if (rest[0] != '\0' && rest[0] != ':') {
        *why = "only \":port\" may follow the host";
        return MSP_ERR_SYNTAX;
    }
    int rc = rest[0] == ':' ? parse_port(rest + 1, port, why) : MSP_OK;
    return rc == MSP_OK ? put_host(h, hlen, host, cap) : rc;
}

static int parse_address(const char *s, char *host, size_t cap, uint16_t *port, const char **why)
{
    const char *sep = strstr(s, "://");
    *port = MSP_TLMSP_CFG_DEFAULT_PORT;
    *why = "";
    if (sep != NULL) {
        if (sep == s) {
            *why = "the url has no scheme before \"://\"";
            return MSP_ERR_SYNTAX;
        }
        return parse_authority(sep + 3, host, cap, port, why);
    }
    size_t len = strlen(s);
    if (is_ipv6(s, len) || is_hostname(s, len)) {
        return put_host(s, len, host, cap);
    }
    *why = is_mac(s) ? "a MAC address has no host to connect to"
                     : "it is not a url, host name or IP address (a port needs the url form tlmsp://host:port)";
    return MSP_ERR_SYNTAX;
}

int msp_tlmsp_cfg_address_parse(const char *url, char *host, size_t host_cap, uint16_t *port)
{
    const char *why;
    uint16_t p = 0;
    if (url == NULL || host == NULL || host_cap == 0) {
        return MSP_ERR_ARGUMENT;
    }
    host[0] = '\0';
    int rc = parse_address(url, host, host_cap, &p, &why);
    if (rc == MSP_OK && port != NULL) {
        *port = p;
    }
    return rc;
}

/* URL iff the text holds "://", as the reference tools decide (tlmsp-handshake.md 1.8). */
int cfg_address(cfg_ld_t *ld, const msp_ucl_t *node, bool mac_ok, const char *in, msp_tlmsp_cfg_address_t *out)
{
    char host[HOST_MAX + 1];
    const char *why;
    int rc = cfg_get_name(ld, node, "address", in, &out->text);
    if (rc != MSP_OK) {
        return rc;
    }
    if (mac_ok && is_mac(out->text)) {
        out->kind = MSP_TLMSP_CFG_ADDR_MAC;
        out->host = "";
        out->port = 0;
        return MSP_OK;
    }
    rc = parse_address(out->text, host, sizeof(host), &out->port, &why);
    if (rc == MSP_ERR_LIMIT) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "the host in \"address\" of %s is longer than %d bytes", in,
                        HOST_MAX);
    }
    if (rc != MSP_OK) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "bad \"address\" \"%s\" in %s: %s", out->text, in, why);
    }
    out->kind = strstr(out->text, "://") != NULL ? MSP_TLMSP_CFG_ADDR_URL : MSP_TLMSP_CFG_ADDR_HOST;
    return cfg_strdup(ld, node, host, strlen(host), &out->host);
}
