/*
 * regex.c - a linear-time regular expression engine for schema patterns.
 *
 * Three stages:
 *   1. parse: a recursive-descent parser turns the pattern (UTF-8) into a
 *      tree of nodes allocated in a temporary arena.  Concatenations and
 *      alternations are sibling lists, so recursion depth is the group
 *      nesting depth (capped at TERN_RX_MAX_DEPTH), not the pattern length.
 *   2. compile: the tree is sized (saturating, capped at TERN_RX_MAX_INSTS)
 *      and emitted into an instruction array (Thompson construction; a
 *      counted repetition emits copies of its operand).
 *   3. search: a Thompson NFA simulation.  The set of live instructions is
 *      kept as a list plus a generation mark per instruction, so each
 *      instruction enters a list at most once per subject position and the
 *      run is O(len(subject) * len(program)), with no backtracking.  Empty
 *      loops such as (a*)* are harmless: the epsilon closure marks what it
 *      visits.
 *
 * Only a yes/no answer is needed (JSON Schema "pattern"), so there are no
 * captures, lazy quantifiers behave like greedy ones, and the search stops
 * at the first MATCH reached.  Classes are normalized at compile time to
 * sorted, merged code point ranges (negation is applied then, too).
 *
 * The cache maps pattern text to a compiled program.  It is an open-address
 * table of immutable entries published with release stores: readers take no
 * lock; writers serialize on a mutex and publish a bigger table when half
 * full (old tables are kept on a list until tern_rx_cache_clear, since a
 * reader may still be probing them).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate/regex.h"

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                      */

#define CP_MAX 0x10FFFFu
#define CP_BAD 0xFFFDu

/*
 * Decodes one code point at s (n > 0 bytes available).  *len gets the bytes
 * used.  Returns the code point, or CP_BAD with *len 1 for any malformed,
 * overlong, surrogate or out-of-range sequence.
 */
static uint32_t utf8_decode(const unsigned char *s, size_t n, size_t *len)
{
    uint32_t c = s[0];
    size_t need, i;
    uint32_t min;

    *len = 1;
    if (c < 0x80)
        return c;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1, min = 0x80, c &= 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2, min = 0x800, c &= 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3, min = 0x10000, c &= 0x07;
    } else {
        return CP_BAD;
    }
    if (n <= need)
        return CP_BAD;
    for (i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return CP_BAD;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > CP_MAX || (c >= 0xD800 && c <= 0xDFFF))
        return CP_BAD;
    *len = need + 1;
    return c;
}

/* ------------------------------------------------------------------------ */
/* Program                                                                    */

enum {
    OP_CHAR,  /* x = code point */
    OP_ANY,   /* any code point but a line terminator (ECMA-262 '.') */
    OP_CLASS, /* ranges[x .. x+y) (pairs lo, hi) */
    OP_BOL,   /* assert: at the start of the subject */
    OP_EOL,   /* assert: at the end of the subject */
    OP_SPLIT, /* continue at x and at y */
    OP_JMP,   /* continue at x */
    OP_MATCH,
};

typedef struct rx_inst {
    uint32_t op;
    uint32_t x, y;
} rx_inst;

struct tern_rx {
    rx_inst *code;
    uint32_t n;
    int anchored;     /* every path starts with ^: only try position 0 */
    uint32_t *ranges; /* class ranges, pairs of (lo, hi) inclusive */
    uint32_t nranges; /* number of pairs */
};

/* ------------------------------------------------------------------------ */
/* Parser                                                                     */

enum { N_EMPTY, N_CHAR, N_ANY, N_CLASS, N_BOL, N_EOL, N_CAT, N_ALT, N_REP };

typedef struct node node;
struct node {
    int kind;
    uint32_t c;         /* N_CHAR */
    uint32_t cls, ncls; /* N_CLASS: first pair and number of pairs in ranges */
    int min, max;       /* N_REP; max -1 = unbounded */
    node *kids;         /* N_CAT, N_ALT: first child; N_REP: the operand */
    node *next;         /* sibling in a CAT or ALT list */
};

typedef struct parser {
    const char *pat;
    size_t pos, len;
    tern_arena arena; /* nodes */
    uint32_t *ranges; /* all classes' ranges (tern_realloc) */
    uint32_t nranges, cap;
    int depth;
    int nomem;
    char *err;
    size_t errlen;
} parser;

/* Records a syntax error; returns NULL so parse functions can `return fail()`. */
static node *fail(parser *p, const char *what)
{
    if (p->err != NULL && p->errlen > 0 && p->err[0] == '\0')
        snprintf(p->err, p->errlen, "%s at offset %zu", what, p->pos);
    return NULL;
}

static node *mk(parser *p, int kind)
{
    node *nd = tern_arena_alloc(&p->arena, sizeof *nd);

    if (nd == NULL) {
        p->nomem = 1;
        return NULL;
    }
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    return nd;
}

/* The next code point of the pattern, or fails on malformed UTF-8. */
static int next_cp(parser *p, uint32_t *c)
{
    size_t l;

    *c = utf8_decode((const unsigned char *)p->pat + p->pos, p->len - p->pos, &l);
    if (*c == CP_BAD && (unsigned char)p->pat[p->pos] >= 0x80) {
        fail(p, "invalid UTF-8 in pattern");
        return -1;
    }
    p->pos += l;
    return 0;
}

static int add_range(parser *p, uint32_t lo, uint32_t hi)
{
    if (p->nranges == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 32;
        uint32_t *r = tern_realloc(p->ranges, (size_t)cap * 2 * sizeof *r);

        if (r == NULL) {
            p->nomem = 1;
            return -1;
        }
        p->ranges = r;
        p->cap = cap;
    }
    p->ranges[2 * p->nranges] = lo;
    p->ranges[2 * p->nranges + 1] = hi;
    p->nranges++;
    return 0;
}

static int cmp_range(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * Sorts and merges the pairs added since `first`, then complements them over
 * [0, CP_MAX] when negate.  The class keeps ranges[first ..).
 */
static int finish_class(parser *p, uint32_t first, int negate)
{
    uint32_t *r = p->ranges + 2 * first;
    uint32_t n = p->nranges - first, out = 0, i;

    if (n > 1)
        qsort(r, n, 2 * sizeof *r, cmp_range);
    for (i = 0; i < n; i++) {
        if (out > 0 && r[2 * i] <= r[2 * (out - 1) + 1] + 1) {
            if (r[2 * i + 1] > r[2 * (out - 1) + 1])
                r[2 * (out - 1) + 1] = r[2 * i + 1];
        } else {
            r[2 * out] = r[2 * i];
            r[2 * out + 1] = r[2 * i + 1];
            out++;
        }
    }
    p->nranges = first + out;
    if (negate) {
        /* The complement has at most out + 1 ranges: copy the set aside on the
         * stack of the ranges array's tail, then rebuild. */
        uint32_t lo = 0, k = out;

        for (i = 0; i < k; i++) {
            if (add_range(p, p->ranges[2 * (first + i)], p->ranges[2 * (first + i) + 1]) != 0)
                return -1;
        }
        p->nranges = first;
        for (i = 0; i < k; i++) {
            uint32_t a = p->ranges[2 * (first + k + i)], b = p->ranges[2 * (first + k + i) + 1];

            /* add_range writes at nranges <= first + i < first + k + i: the
             * copy being read is never overwritten before it is read. */
            if (a > lo && add_range(p, lo, a - 1) != 0)
                return -1;
            lo = b + 1;
        }
        if (lo <= CP_MAX && add_range(p, lo, CP_MAX) != 0)
            return -1;
    }
    return 0;
}

/* Adds the ranges of \d \w \s (or their negations \D \W \S). */
static int add_class_escape(parser *p, char e)
{
    static const uint32_t digit[] = { '0', '9' };
    static const uint32_t word[] = { '0', '9', 'A', 'Z', '_', '_', 'a', 'z' };
    /* ECMA-262 WhiteSpace and LineTerminator. */
    static const uint32_t space[] = { 0x09,   0x0D,   0x20,   0x20,   0xA0,   0xA0,   0x1680,
                                      0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x202F,
                                      0x205F, 0x205F, 0x3000, 0x3000, 0xFEFF, 0xFEFF };
    const uint32_t *set;
    size_t n, i;
    uint32_t lo = 0;
    int neg = e == 'D' || e == 'W' || e == 'S';

    switch (e) {
    case 'd':
    case 'D': set = digit, n = 1; break;
    case 'w':
    case 'W': set = word, n = 4; break;
    default: set = space, n = 10; break;
    }
    for (i = 0; i < n; i++) {
        if (!neg) {
            if (add_range(p, set[2 * i], set[2 * i + 1]) != 0)
                return -1;
        } else {
            if (set[2 * i] > lo && add_range(p, lo, set[2 * i] - 1) != 0)
                return -1;
            lo = set[2 * i + 1] + 1;
        }
    }
    if (neg && add_range(p, lo, CP_MAX) != 0)
        return -1;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads exactly n hex digits. */
static int read_hex(parser *p, int n, uint32_t *out)
{
    uint32_t v = 0;

    for (int i = 0; i < n; i++) {
        int h = p->pos < p->len ? hexval(p->pat[p->pos]) : -1;

        if (h < 0) {
            fail(p, "invalid hexadecimal escape");
            return -1;
        }
        v = v * 16 + (uint32_t)h;
        p->pos++;
    }
    *out = v;
    return 0;
}

/*
 * Parses the escape after a backslash (p->pos is just past it).  Returns 1
 * with *c set for a single code point, 2 when it was a class escape (\d...,
 * *c holds the letter), or -1 on error.  in_class allows \b (backspace) and
 * \- there.
 */
static int parse_escape(parser *p, int in_class, uint32_t *c)
{
    char e;

    if (p->pos >= p->len) {
        fail(p, "pattern ends with a backslash");
        return -1;
    }
    e = p->pat[p->pos++];
    switch (e) {
    case 'd':
    case 'D':
    case 'w':
    case 'W':
    case 's':
    case 'S': *c = (uint32_t)e; return 2;
    case 'n': *c = '\n'; return 1;
    case 'r': *c = '\r'; return 1;
    case 't': *c = '\t'; return 1;
    case 'f': *c = '\f'; return 1;
    case 'v': *c = '\v'; return 1;
    case '0':
        if (p->pos < p->len && p->pat[p->pos] >= '0' && p->pat[p->pos] <= '9') {
            fail(p, "octal escapes are not supported");
            return -1;
        }
        *c = 0;
        return 1;
    case 'x': return read_hex(p, 2, c) == 0 ? 1 : -1;
    case 'u':
        if (p->pos < p->len && p->pat[p->pos] == '{') {
            uint32_t v = 0;
            int nd = 0;

            p->pos++;
            while (p->pos < p->len && hexval(p->pat[p->pos]) >= 0 && v <= CP_MAX) {
                v = v * 16 + (uint32_t)hexval(p->pat[p->pos++]);
                nd++;
            }
            if (nd == 0 || p->pos >= p->len || p->pat[p->pos] != '}' || v > CP_MAX) {
                fail(p, "invalid \\u{...} escape");
                return -1;
            }
            p->pos++;
            *c = v;
            return 1;
        }
        return read_hex(p, 4, c) == 0 ? 1 : -1;
    case 'b':
        if (in_class) {
            *c = 0x08;
            return 1;
        }
        fail(p, "word boundaries (\\b, \\B) are not supported");
        return -1;
    case 'B': fail(p, "word boundaries (\\b, \\B) are not supported"); return -1;
    default: break;
    }
    if (e >= '1' && e <= '9') {
        fail(p, "backreferences are not supported");
        return -1;
    }
    /* Any other escaped ASCII punctuation stands for itself: \. \- \\ \/ \$. */
    if ((unsigned char)e < 0x80 && e > 0x20 && !(e >= '0' && e <= '9') && !(e >= 'a' && e <= 'z') &&
        !(e >= 'A' && e <= 'Z')) {
        *c = (uint32_t)(unsigned char)e;
        return 1;
    }
    p->pos--;
    fail(p, "unknown escape");
    return -1;
}

/* Parses a class after its '['. */
static node *parse_class(parser *p)
{
    uint32_t first = p->nranges;
    int negate = 0;
    node *nd;

    if (p->pos < p->len && p->pat[p->pos] == '^') {
        negate = 1;
        p->pos++;
    }
    for (;;) {
        uint32_t lo, hi;
        int k;

        if (p->pos >= p->len)
            return fail(p, "unterminated character class");
        if (p->pat[p->pos] == ']') {
            p->pos++;
            break;
        }
        if (p->pat[p->pos] == '\\') {
            p->pos++;
            k = parse_escape(p, 1, &lo);
            if (k < 0)
                return NULL;
            if (k == 2) {
                if (add_class_escape(p, (char)lo) != 0)
                    return NULL;
                if (p->pos + 1 < p->len && p->pat[p->pos] == '-' && p->pat[p->pos + 1] != ']')
                    return fail(p, "a class escape cannot be a range endpoint");
                continue;
            }
        } else if (next_cp(p, &lo) != 0) {
            return NULL;
        }
        hi = lo;
        /* A '-' makes a range unless it is the last character before ']'. */
        if (p->pos + 1 < p->len && p->pat[p->pos] == '-' && p->pat[p->pos + 1] != ']') {
            p->pos++;
            if (p->pat[p->pos] == '\\') {
                p->pos++;
                k = parse_escape(p, 1, &hi);
                if (k < 0)
                    return NULL;
                if (k == 2)
                    return fail(p, "a class escape cannot be a range endpoint");
            } else if (next_cp(p, &hi) != 0) {
                return NULL;
            }
            if (hi < lo)
                return fail(p, "range out of order in character class");
        }
        if (add_range(p, lo, hi) != 0)
            return NULL;
    }
    if (finish_class(p, first, negate) != 0)
        return NULL;
    nd = mk(p, N_CLASS);
    if (nd != NULL) {
        nd->cls = first;
        nd->ncls = p->nranges - first;
    }
    return nd;
}

static node *parse_alt(parser *p);

/* A class node from a class escape outside brackets (\d, \W...). */
static node *escape_class(parser *p, char e)
{
    uint32_t first = p->nranges;
    node *nd;

    if (add_class_escape(p, e) != 0 || finish_class(p, first, 0) != 0)
        return NULL;
    nd = mk(p, N_CLASS);
    if (nd != NULL) {
        nd->cls = first;
        nd->ncls = p->nranges - first;
    }
    return nd;
}

static node *parse_atom(parser *p)
{
    char ch = p->pat[p->pos];
    uint32_t c;
    node *nd;
    int k;

    switch (ch) {
    case '(':
        p->pos++;
        if (p->pos < p->len && p->pat[p->pos] == '?') {
            if (p->pos + 1 < p->len && p->pat[p->pos + 1] == ':') {
                p->pos += 2;
            } else if (p->pos + 2 < p->len && p->pat[p->pos + 1] == '<' &&
                       p->pat[p->pos + 2] != '=' && p->pat[p->pos + 2] != '!') {
                /* A named group (?<name>...) is a plain group here. */
                size_t q = p->pos + 2;

                while (q < p->len && (p->pat[q] == '_' || p->pat[q] == '$' ||
                                      (p->pat[q] >= '0' && p->pat[q] <= '9') ||
                                      ((p->pat[q] | 0x20) >= 'a' && (p->pat[q] | 0x20) <= 'z')))
                    q++;
                if (q == p->pos + 2 || q >= p->len || p->pat[q] != '>')
                    return fail(p, "invalid group name");
                p->pos = q + 1;
            } else {
                return fail(p, "lookaround and other (? groups are not supported");
            }
        }
        if (++p->depth > TERN_RX_MAX_DEPTH)
            return fail(p, "groups nested too deeply");
        nd = parse_alt(p);
        p->depth--;
        if (nd == NULL)
            return NULL;
        if (p->pos >= p->len || p->pat[p->pos] != ')')
            return fail(p, "missing ')'");
        p->pos++;
        return nd;
    case '[': p->pos++; return parse_class(p);
    case '.': p->pos++; return mk(p, N_ANY);
    case '^': p->pos++; return mk(p, N_BOL);
    case '$': p->pos++; return mk(p, N_EOL);
    case '\\':
        p->pos++;
        k = parse_escape(p, 0, &c);
        if (k < 0)
            return NULL;
        if (k == 2)
            return escape_class(p, (char)c);
        break;
    case ')': return fail(p, "unmatched ')'");
    case ']':
    case '{':
    case '}': return fail(p, "unescaped bracket or brace (write \\] \\{ \\})");
    case '*':
    case '+':
    case '?': return fail(p, "nothing to repeat");
    default:
        if (next_cp(p, &c) != 0)
            return NULL;
        break;
    }
    nd = mk(p, N_CHAR);
    if (nd != NULL)
        nd->c = c;
    return nd;
}

/* Reads a decimal repeat count (at most TERN_RX_MAX_REPEAT). */
static int read_count(parser *p, int *out)
{
    int v = 0, nd = 0;

    while (p->pos < p->len && p->pat[p->pos] >= '0' && p->pat[p->pos] <= '9') {
        v = v * 10 + (p->pat[p->pos++] - '0');
        if (v > TERN_RX_MAX_REPEAT) {
            fail(p, "repetition count above 1000");
            return -1;
        }
        nd++;
    }
    if (nd == 0) {
        fail(p, "invalid quantifier (write \\{ for a literal brace)");
        return -1;
    }
    *out = v;
    return 0;
}

/* An atom and its quantifiers. */
static node *parse_rep(parser *p)
{
    node *atom = parse_atom(p), *r;
    int min, max;

    if (atom == NULL)
        return NULL;
    if (p->pos >= p->len)
        return atom;
    switch (p->pat[p->pos]) {
    case '*':
        min = 0, max = -1;
        p->pos++;
        break;
    case '+':
        min = 1, max = -1;
        p->pos++;
        break;
    case '?':
        min = 0, max = 1;
        p->pos++;
        break;
    case '{':
        p->pos++;
        if (read_count(p, &min) != 0)
            return NULL;
        max = min;
        if (p->pos < p->len && p->pat[p->pos] == ',') {
            p->pos++;
            if (p->pos < p->len && p->pat[p->pos] == '}')
                max = -1;
            else if (read_count(p, &max) != 0)
                return NULL;
        }
        if (p->pos >= p->len || p->pat[p->pos] != '}')
            return fail(p, "invalid quantifier (write \\{ for a literal brace)");
        p->pos++;
        if (max >= 0 && max < min)
            return fail(p, "quantifier {m,n} with m > n");
        break;
    default: return atom;
    }
    if (atom->kind == N_BOL || atom->kind == N_EOL)
        return fail(p, "nothing to repeat");
    /* A trailing '?' makes the quantifier lazy: the same for a yes/no match. */
    if (p->pos < p->len && p->pat[p->pos] == '?')
        p->pos++;
    if (p->pos < p->len && (p->pat[p->pos] == '*' || p->pat[p->pos] == '+' ||
                            p->pat[p->pos] == '?' || p->pat[p->pos] == '{'))
        return fail(p, "nothing to repeat");
    r = mk(p, N_REP);
    if (r == NULL)
        return NULL;
    r->kids = atom;
    r->min = min;
    r->max = max;
    return r;
}

/* A concatenation, up to '|', ')' or the end. */
static node *parse_cat(parser *p)
{
    node *cat = mk(p, N_CAT), **tail;

    if (cat == NULL)
        return NULL;
    tail = &cat->kids;
    while (p->pos < p->len && p->pat[p->pos] != '|' && p->pat[p->pos] != ')') {
        node *r = parse_rep(p);

        if (r == NULL)
            return NULL;
        *tail = r;
        tail = &r->next;
    }
    return cat;
}

static node *parse_alt(parser *p)
{
    node *alt = mk(p, N_ALT), **tail;

    if (alt == NULL)
        return NULL;
    tail = &alt->kids;
    for (;;) {
        node *c = parse_cat(p);

        if (c == NULL)
            return NULL;
        *tail = c;
        tail = &c->next;
        if (p->pos >= p->len || p->pat[p->pos] != '|')
            break;
        p->pos++;
    }
    return alt;
}

/* ------------------------------------------------------------------------ */
/* Code generation                                                            */

#define SIZE_CAP ((size_t)TERN_RX_MAX_INSTS + 1)

static size_t sat_add(size_t a, size_t b)
{
    return a + b > SIZE_CAP ? SIZE_CAP : a + b;
}

static size_t sat_mul(size_t a, size_t b)
{
    return b != 0 && a > SIZE_CAP / b ? SIZE_CAP : sat_add(a * b, 0);
}

/* Instructions node will emit (saturating at SIZE_CAP). */
static size_t node_size(const node *nd)
{
    size_t s = 0, e, k = 0;
    const node *c;

    switch (nd->kind) {
    case N_EMPTY: return 0;
    case N_CAT:
        for (c = nd->kids; c != NULL; c = c->next)
            s = sat_add(s, node_size(c));
        return s;
    case N_ALT:
        for (c = nd->kids; c != NULL; c = c->next, k++)
            s = sat_add(s, node_size(c));
        /* n alternatives: n-1 SPLITs and n-1 JMPs */
        return sat_add(s, 2 * (k - 1));
    case N_REP:
        e = node_size(nd->kids);
        if (nd->max < 0) {
            if (nd->min == 0)
                return sat_add(e, 2);
            return sat_add(sat_mul(e, (size_t)nd->min), 1);
        }
        return sat_add(sat_mul(e, (size_t)nd->min),
                       sat_mul(sat_add(e, 1), (size_t)(nd->max - nd->min)));
    default: return 1;
    }
}

typedef struct emitter {
    rx_inst *code;
    uint32_t n;
} emitter;

static uint32_t put(emitter *em, uint32_t op, uint32_t x, uint32_t y)
{
    em->code[em->n].op = op;
    em->code[em->n].x = x;
    em->code[em->n].y = y;
    return em->n++;
}

static void emit(emitter *em, const node *nd)
{
    const node *c;
    uint32_t l, j, start;
    int i;

    switch (nd->kind) {
    case N_EMPTY: break;
    case N_CHAR: put(em, OP_CHAR, nd->c, 0); break;
    case N_ANY: put(em, OP_ANY, 0, 0); break;
    case N_CLASS: put(em, OP_CLASS, nd->cls, nd->ncls); break;
    case N_BOL: put(em, OP_BOL, 0, 0); break;
    case N_EOL: put(em, OP_EOL, 0, 0); break;
    case N_CAT:
        for (c = nd->kids; c != NULL; c = c->next)
            emit(em, c);
        break;
    case N_ALT: {
        /* SPLIT a, next; a; JMP end; SPLIT b, next; b; JMP end; ...; last.
         * The JMPs are chained through .x and patched at the end. */
        uint32_t jmps = UINT32_MAX;

        for (c = nd->kids; c->next != NULL; c = c->next) {
            l = put(em, OP_SPLIT, em->n + 1, 0);
            emit(em, c);
            j = put(em, OP_JMP, jmps, 0);
            jmps = j;
            em->code[l].y = em->n;
        }
        emit(em, c);
        while (jmps != UINT32_MAX) {
            j = em->code[jmps].x;
            em->code[jmps].x = em->n;
            jmps = j;
        }
        break;
    }
    case N_REP:
        if (nd->max < 0 && nd->min == 0) {
            /* L: SPLIT body, end; body; JMP L */
            l = put(em, OP_SPLIT, em->n + 1, 0);
            emit(em, nd->kids);
            put(em, OP_JMP, l, 0);
            em->code[l].y = em->n;
            break;
        }
        for (i = 0; i < nd->min; i++) {
            start = em->n;
            emit(em, nd->kids);
            if (nd->max < 0 && i == nd->min - 1)
                put(em, OP_SPLIT, start, em->n + 1); /* the last copy loops */
        }
        if (nd->max > nd->min) {
            /* Optional copies: SPLIT body, end; body; ... with every SPLIT's
             * second branch patched to the end (chained through .y). */
            uint32_t chain = UINT32_MAX;

            for (i = nd->min; i < nd->max; i++) {
                l = put(em, OP_SPLIT, em->n + 1, chain);
                chain = l;
                emit(em, nd->kids);
            }
            while (chain != UINT32_MAX) {
                j = em->code[chain].y;
                em->code[chain].y = em->n;
                chain = j;
            }
        }
        break;
    }
}

/* 1 when every path through nd must first pass a BOL (so only position 0 can match). */
static int starts_anchored(const node *nd)
{
    const node *c;

    switch (nd->kind) {
    case N_BOL: return 1;
    case N_CAT:
        for (c = nd->kids; c != NULL; c = c->next) {
            if (starts_anchored(c))
                return 1;
            if (c->kind != N_EOL) /* anything else might consume or is not an anchor */
                return 0;
        }
        return 0;
    case N_ALT:
        for (c = nd->kids; c != NULL; c = c->next) {
            if (!starts_anchored(c))
                return 0;
        }
        return 1;
    case N_REP: return nd->min > 0 && starts_anchored(nd->kids);
    default: return 0;
    }
}

int tern_rx_compile(const char *pattern, tern_rx **out, char *err, size_t errlen)
{
    parser p;
    node *root;
    tern_rx *rx = NULL;
    size_t size;
    emitter em;
    int rc = TERN_EINVAL;

    *out = NULL;
    memset(&p, 0, sizeof p);
    p.pat = pattern;
    p.len = strlen(pattern);
    p.err = err;
    p.errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    tern_arena_init(&p.arena, 4096);

    root = parse_alt(&p);
    if (root != NULL && p.pos < p.len)
        root = fail(&p, "unmatched ')'");
    if (root == NULL) {
        rc = p.nomem ? TERN_ENOMEM : TERN_EINVAL;
        goto done;
    }
    size = sat_add(node_size(root), 1);
    if (size > TERN_RX_MAX_INSTS) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen,
                     "pattern too large (more than %d instructions once "
                     "repetitions are expanded)",
                     TERN_RX_MAX_INSTS);
        goto done;
    }
    rc = TERN_ENOMEM;
    rx = tern_calloc(1, sizeof *rx);
    if (rx == NULL)
        goto done;
    rx->code = tern_malloc(size * sizeof *rx->code);
    if (rx->code == NULL)
        goto done;
    if (p.nranges > 0) {
        rx->ranges = tern_malloc((size_t)p.nranges * 2 * sizeof *rx->ranges);
        if (rx->ranges == NULL)
            goto done;
        memcpy(rx->ranges, p.ranges, (size_t)p.nranges * 2 * sizeof *rx->ranges);
        rx->nranges = p.nranges;
    }
    em.code = rx->code;
    em.n = 0;
    emit(&em, root);
    put(&em, OP_MATCH, 0, 0);
    rx->n = em.n;
    rx->anchored = starts_anchored(root);
    *out = rx;
    rx = NULL;
    rc = 0;
done:
    tern_rx_free(rx);
    tern_free(p.ranges);
    tern_arena_deinit(&p.arena);
    return rc;
}

void tern_rx_free(tern_rx *rx)
{
    if (rx == NULL)
        return;
    tern_free(rx->code);
    tern_free(rx->ranges);
    tern_free(rx);
}

size_t tern_rx_size(const tern_rx *rx)
{
    return rx->n;
}

/* ------------------------------------------------------------------------ */
/* Search                                                                     */

static int in_class(const tern_rx *rx, uint32_t first, uint32_t n, uint32_t c)
{
    const uint32_t *r = rx->ranges + 2 * first;
    uint32_t lo = 0, hi = n;

    if (n <= 8) {
        for (uint32_t i = 0; i < n; i++) {
            if (c < r[2 * i])
                return 0;
            if (c <= r[2 * i + 1])
                return 1;
        }
        return 0;
    }
    while (lo < hi) { /* the first range whose hi >= c */
        uint32_t mid = lo + (hi - lo) / 2;

        if (r[2 * mid + 1] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && c >= r[2 * lo];
}

/* Per-search working memory: two thread lists, a stack, and the marks. */
typedef struct rx_sim {
    const tern_rx *rx;
    uint16_t *clist, *nlist, *stack;
    uint32_t *mark;
    uint32_t cn, nn;
} rx_sim;

/*
 * Adds pc and its epsilon closure to the list (list/cnt) whose generation is
 * gen, evaluating ^ and $ at the position described by atstart/atend.
 * Consuming instructions are appended; returns 1 if MATCH is reachable.
 */
static int add_thread(rx_sim *sim, uint16_t *list, uint32_t *cnt, uint32_t gen, uint32_t pc,
                      int atstart, int atend)
{
    const rx_inst *code = sim->rx->code;
    uint32_t sp = 0;

    if (sim->mark[pc] == gen)
        return 0;
    sim->mark[pc] = gen;
    sim->stack[sp++] = (uint16_t)pc;
#define PUSH(t)                                                                                    \
    do {                                                                                           \
        uint32_t t_ = (t);                                                                         \
        if (sim->mark[t_] != gen) {                                                                \
            sim->mark[t_] = gen;                                                                   \
            sim->stack[sp++] = (uint16_t)t_;                                                       \
        }                                                                                          \
    } while (0)
    while (sp > 0) {
        const rx_inst *in;

        pc = sim->stack[--sp];
        in = &code[pc];
        switch (in->op) {
        case OP_MATCH: return 1;
        case OP_JMP: PUSH(in->x); break;
        case OP_SPLIT:
            PUSH(in->y);
            PUSH(in->x);
            break;
        case OP_BOL:
            if (atstart)
                PUSH(pc + 1);
            break;
        case OP_EOL:
            if (atend)
                PUSH(pc + 1);
            break;
        default: list[(*cnt)++] = (uint16_t)pc; break;
        }
    }
#undef PUSH
    return 0;
}

static int run(rx_sim *sim, const unsigned char *s, size_t n)
{
    const tern_rx *rx = sim->rx;
    uint32_t gen = 1, cgen = 1;
    size_t i = 0;

    memset(sim->mark, 0, rx->n * sizeof *sim->mark);
    sim->cn = 0;
    for (;;) {
        uint32_t c, k;
        size_t l;
        uint16_t *tmp;

        /* Unanchored search: a new thread starts at every position. */
        if ((i == 0 || !rx->anchored) &&
            add_thread(sim, sim->clist, &sim->cn, cgen, 0, i == 0, i == n))
            return 1;
        if (i == n || (sim->cn == 0 && rx->anchored))
            return 0;
        c = utf8_decode(s + i, n - i, &l);
        if (++gen == 0) { /* generation wrapped (a 4 GiB subject): start over */
            memset(sim->mark, 0, rx->n * sizeof *sim->mark);
            gen = 1;
        }
        sim->nn = 0;
        for (k = 0; k < sim->cn; k++) {
            const rx_inst *in = &rx->code[sim->clist[k]];
            int ok;

            switch (in->op) {
            case OP_CHAR: ok = c == in->x; break;
            case OP_ANY: ok = c != '\n' && c != '\r' && c != 0x2028 && c != 0x2029; break;
            default: /* OP_CLASS */ ok = in_class(rx, in->x, in->y, c); break;
            }
            if (ok && add_thread(sim, sim->nlist, &sim->nn, gen, sim->clist[k] + 1u, 0, i + l == n))
                return 1;
        }
        tmp = sim->clist;
        sim->clist = sim->nlist;
        sim->nlist = tmp;
        sim->cn = sim->nn;
        cgen = gen;
        i += l;
    }
}

/* Programs up to this many instructions search with stack memory only. */
#define SMALL_PROG 256

int tern_rx_search(const tern_rx *rx, const char *s, size_t n)
{
    rx_sim sim;
    int rc;

    sim.rx = rx;
    if (rx->n <= SMALL_PROG) {
        uint16_t lists[3 * SMALL_PROG];
        uint32_t mark[SMALL_PROG];

        sim.clist = lists;
        sim.nlist = lists + SMALL_PROG;
        sim.stack = lists + 2 * SMALL_PROG;
        sim.mark = mark;
        return run(&sim, (const unsigned char *)s, n);
    } else {
        void *mem = tern_malloc((size_t)rx->n * (3 * sizeof(uint16_t) + sizeof(uint32_t)));

        if (mem == NULL)
            return TERN_ENOMEM;
        sim.mark = mem;
        sim.clist = (uint16_t *)(sim.mark + rx->n);
        sim.nlist = sim.clist + rx->n;
        sim.stack = sim.nlist + rx->n;
        rc = run(&sim, (const unsigned char *)s, n);
        tern_free(mem);
        return rc;
    }
}

/* ------------------------------------------------------------------------ */
/* Cache                                                                      */

typedef struct rx_entry {
    uint64_t hash;
    char *pattern; /* own copy: the key is the text, so a freed-and-reused
                      pattern pointer can never return a stale program */
    tern_rx *rx;   /* NULL: the pattern does not compile */
} rx_entry;

typedef struct rx_table {
    struct rx_table *older; /* retired tables, freed by tern_rx_cache_clear */
    size_t cap, count;      /* cap is a power of two */
    _Atomic(rx_entry *) slot[];
} rx_table;

static _Atomic(rx_table *) cache;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h;
}

static rx_entry *lookup(rx_table *t, uint64_t h, const char *pattern)
{
    size_t i;

    if (t == NULL)
        return NULL;
    for (i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        rx_entry *e = atomic_load_explicit(&t->slot[i], memory_order_acquire);

        if (e == NULL)
            return NULL;
        if (e->hash == h && strcmp(e->pattern, pattern) == 0)
            return e;
    }
}

static void place(rx_table *t, rx_entry *e)
{
    size_t i = e->hash & (t->cap - 1);

    while (atomic_load_explicit(&t->slot[i], memory_order_relaxed) != NULL)
        i = (i + 1) & (t->cap - 1);
    atomic_store_explicit(&t->slot[i], e, memory_order_release);
    t->count++;
}

/* Under the lock: inserts e, growing the table first when it would pass half full. */
static int insert(rx_entry *e)
{
    rx_table *t = atomic_load_explicit(&cache, memory_order_relaxed);

    if (t == NULL || (t->count + 1) * 2 > t->cap) {
        size_t cap = t ? t->cap * 2 : 16, i;
        rx_table *nt = tern_calloc(1, sizeof *nt + cap * sizeof nt->slot[0]);

        if (nt == NULL)
            return TERN_ENOMEM;
        nt->cap = cap;
        nt->older = t;
        for (i = 0; t != NULL && i < t->cap; i++) {
            rx_entry *old = atomic_load_explicit(&t->slot[i], memory_order_relaxed);

            if (old != NULL)
                place(nt, old);
        }
        atomic_store_explicit(&cache, nt, memory_order_release);
        t = nt;
    }
    place(t, e);
    return 0;
}

int tern_rx_get(const char *pattern, const tern_rx **out)
{
    uint64_t h = fnv1a(pattern);
    rx_entry *e = lookup(atomic_load_explicit(&cache, memory_order_acquire), h, pattern);
    tern_rx *rx = NULL;
    int rc = 0;

    if (e == NULL) {
        pthread_mutex_lock(&cache_lock);
        e = lookup(atomic_load_explicit(&cache, memory_order_relaxed), h, pattern);
        if (e == NULL) {
            rc = tern_rx_compile(pattern, &rx, NULL, 0);
            if (rc == TERN_ENOMEM)
                goto unlock;
            rc = TERN_ENOMEM;
            e = tern_malloc(sizeof *e);
            if (e == NULL)
                goto unlock;
            e->hash = h;
            e->rx = rx;
            e->pattern = tern_strdup(pattern);
            if (e->pattern == NULL || insert(e) != 0) {
                tern_free(e->pattern);
                tern_free(e);
                e = NULL;
                goto unlock;
            }
            rx = NULL;
            rc = 0;
        }
    unlock:
        pthread_mutex_unlock(&cache_lock);
        tern_rx_free(rx);
        if (e == NULL)
            return rc;
    }
    *out = e->rx;
    return e->rx != NULL ? 0 : TERN_EINVAL;
}

void tern_rx_cache_clear(void)
{
    rx_table *t, *older;
    size_t i;

    pthread_mutex_lock(&cache_lock);
    t = atomic_load_explicit(&cache, memory_order_relaxed);
    atomic_store_explicit(&cache, NULL, memory_order_relaxed);
    for (i = 0; t != NULL && i < t->cap; i++) {
        rx_entry *e = atomic_load_explicit(&t->slot[i], memory_order_relaxed);

        if (e != NULL) {
            tern_rx_free(e->rx);
            tern_free(e->pattern);
            tern_free(e);
        }
    }
    for (; t != NULL; t = older) {
        older = t->older;
        tern_free(t);
    }
    pthread_mutex_unlock(&cache_lock);
}
