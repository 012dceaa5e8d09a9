/*
 * hello.c -- the smallest sample function: a WASI preview1 command module.
 *
 * Reads the execution's input JSON (argv[1], or stdin when argv has no
 * INPUT, as for inputs above 64 KiB) and prints
 *
 *     {"hello":<direct_inputs.name or "world">,"input":<INPUT>}
 *
 * INPUT is copied verbatim when it is valid JSON (checked by the small
 * validator below); otherwise it is emitted as a JSON string, so stdout is
 * always valid JSON. The name is copied as its raw JSON string literal,
 * escapes included, so it needs no re-escaping. Logs go to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a minimal JSON validator / walker (RFC 8259, depth-limited) ---- */

typedef struct {
    const char *s;
    size_t n, i;
    int depth;
} P;

static void ws(P *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
                           p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string literal starting at p->i (a '"'); on success p->i is past it. */
static int str(P *p) {
    if (p->i >= p->n || p->s[p->i] != '"') return 0;
    p->i++;
    while (p->i < p->n) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') { p->i++; return 1; }
        if (c < 0x20) return 0;
        if (c == '\\') {
            if (++p->i >= p->n) return 0;
            c = (unsigned char)p->s[p->i];
            if (c == 'u') {
                if (p->i + 4 >= p->n) return 0;
                for (int k = 1; k <= 4; k++)
                    if (!hex(p->s[p->i + k])) return 0;
                p->i += 4;
            } else if (!strchr("\"\\/bfnrt", c)) {
                return 0;
            }
        }
        p->i++;
    }
    return 0;
}

static int digits(P *p) {
    size_t st = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    return p->i > st;
}

static int num(P *p) {
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (p->i < p->n && p->s[p->i] == '0') p->i++;
    else if (!digits(p)) return 0;
    if (p->i < p->n && p->s[p->i] == '.') { p->i++; if (!digits(p)) return 0; }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (!digits(p)) return 0;
    }
    return 1;
}

static int lit(P *p, const char *w) {
    size_t l = strlen(w);
    if (p->n - p->i < l || memcmp(p->s + p->i, w, l) != 0) return 0;
    p->i += l;
    return 1;
}

static int value(P *p);

/* Object at p->i. If want_key is set, records where the value of that key
 * (compared as a raw literal, e.g. "\"name\"") starts; the last one wins. */
static int object(P *p, const char *want_key, size_t *found) {
    p->i++; /* '{' */
    ws(p);
    if (p->i < p->n && p->s[p->i] == '}') { p->i++; return 1; }
    for (;;) {
        ws(p);
        size_t k = p->i;
        if (!str(p)) return 0;
        int match = want_key && p->i - k == strlen(want_key) &&
                    memcmp(p->s + k, want_key, p->i - k) == 0;
        ws(p);
        if (p->i >= p->n || p->s[p->i] != ':') return 0;
        p->i++;
        ws(p);
        if (match) *found = p->i;
        if (!value(p)) return 0;
        ws(p);
        if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
        if (p->i < p->n && p->s[p->i] == '}') { p->i++; return 1; }
        return 0;
    }
}

static int value(P *p) {
    if (p->i >= p->n) return 0;
    if (++p->depth > 128) return 0;
    int ok;
    switch (p->s[p->i]) {
    case '{': ok = object(p, NULL, NULL); break;
    case '[':
        p->i++;
        ws(p);
        if (p->i < p->n && p->s[p->i] == ']') { p->i++; ok = 1; break; }
        for (;;) {
            ws(p);
            if (!(ok = value(p))) break;
            ws(p);
            if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
            ok = p->i < p->n && p->s[p->i] == ']';
            if (ok) p->i++;
            break;
        }
        break;
    case '"': ok = str(p); break;
    case 't': ok = lit(p, "true"); break;
    case 'f': ok = lit(p, "false"); break;
    case 'n': ok = lit(p, "null"); break;
    default: ok = num(p); break;
    }
    p->depth--;
    return ok;
}

/* Finds the value of `key` in the object starting at `at`; returns its
 * offset or (size_t)-1. The text is already known to be valid. */
static size_t member(const char *s, size_t n, size_t at, const char *key) {
    if (at >= n || s[at] != '{') return (size_t)-1;
    P p = {s, n, at, 0};
    size_t found = (size_t)-1;
    object(&p, key, &found);
    return found;
}

/* ---- input ---- */

static char *read_stdin(size_t *len) {
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); return NULL; }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
    }
    *len = n;
    return buf;
}

static void put_json_string(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { putchar('\\'); putchar(c); }
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    const char *in;
    size_t n;
    if (argc > 1) {
        in = argv[1];
        n = strlen(in);
        fprintf(stderr, "hello called (input from argv, %zu bytes)\n", n);
    } else {
        char *buf = read_stdin(&n);
        if (!buf) {
            fputs("out of memory reading stdin\n", stderr);
            printf("{\"error\":\"out of memory reading stdin\"}\n");
            return 0;
        }
        in = buf;
        fprintf(stderr, "hello called (input from stdin, %zu bytes)\n", n);
    }

    /* trim surrounding whitespace */
    while (n > 0 && strchr(" \t\r\n", in[n - 1])) n--;
    while (n > 0 && strchr(" \t\r\n", in[0])) { in++; n--; }

    P p = {in, n, 0, 0};
    int valid = n > 0 && value(&p) && (ws(&p), p.i == n);

    const char *name = NULL;
    size_t name_len = 0;
    if (valid) {
        size_t d = member(in, n, 0, "\"direct_inputs\"");
        if (d != (size_t)-1) {
            size_t v = member(in, n, d, "\"name\"");
            if (v != (size_t)-1 && in[v] == '"') {
                P q = {in, n, v, 0};
                str(&q);
                name = in + v;
                name_len = q.i - v;
            }
        }
    } else {
        fputs("input is not valid JSON; echoing it as a string\n", stderr);
    }

    fputs("{\"hello\":", stdout);
    if (name) fwrite(name, 1, name_len, stdout);
    else fputs("\"world\"", stdout);
    fputs(",\"input\":", stdout);
    if (valid) fwrite(in, 1, n, stdout);
    else put_json_string(in, n);
    fputs("}\n", stdout);
    return 0;
}
