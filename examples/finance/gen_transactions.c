/*
 * gen-transactions: a seeded generator of realistic card transactions (CSV) for the
 * card-transaction analytics example. The same seed always gives the same file.
 *
 *   gen-transactions [--seed N] [--cards N] [--days N] [-o OUT.csv] [--truth TRUTH.csv]
 *
 * Columns: txn_id,timestamp,card_number,merchant_id,merchant_name,category,city,country,amount,
 * currency. Card numbers are Luhn-valid numbers in the public test ranges (411111, 424242,
 * 400000, 555555, 510510, 222300): they look real to a parser but belong to nobody. Amounts are
 * the billing amount in USD. Rows are sorted by time.
 *
 * Ordinary cards shop in their home city, never twice within three hours, so the rules below
 * cannot fire on them. Injected on top (and listed in --truth as masked PAN + pattern):
 *   velocity     5-9 purchases on one card within 8 minutes (card testing, a stolen card)
 *   geography    the same card in two cities > 1000 km apart, in different countries, within
 *                15-50 minutes (a cloned card)
 * and two controls the rules must NOT flag:
 *   near-miss    4 purchases within 9 minutes (below the velocity threshold of 5)
 *   commuter     Geneva (CH) then Annecy (FR), 35 km apart, 30 minutes later (two countries,
 *                but a short distance)
 * The masked PAN (first 6, ******, last 4) is unique per card.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cities.h"

#define MAX_CARDS   5000
#define MAX_TXNS    200000
#define START_EPOCH INT64_C(1772323200) /* 2026-03-01T00:00:00Z */
#define MIN_GAP     (3 * 3600)

struct rng {
    uint64_t s;
};

static uint64_t
next(struct rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint64_t
below(struct rng *r, uint64_t n)
{
    return n == 0 ? 0 : next(r) % n;
}

static const char *const categories[] = {"grocery",  "fuel",     "restaurant", "electronics",
                                         "pharmacy", "clothing", "travel",     "entertainment"};
#define CATEGORY_COUNT (sizeof(categories) / sizeof(categories[0]))
/* Typical amount range per category, in cents. */
static const int64_t cat_lo[CATEGORY_COUNT] = {500, 2000, 800, 3000, 300, 1500, 8000, 1000};
static const int64_t cat_hi[CATEGORY_COUNT] = {15000, 9000,  12000,  150000,
                                               6000,  30000, 200000, 8000};
static const char *const cat_nouns[CATEGORY_COUNT] = {
    "Market", "Fuel", "Bistro", "Electronics", "Pharmacy", "Outfitters", "Travel", "Cinema"};
static const char *const name_words[] = {"Harbor", "Maple",  "Summit",   "Corner",  "Lakeside",
                                         "Union",  "Bright", "Old Town", "Central", "Northgate"};
#define NAME_WORD_COUNT (sizeof(name_words) / sizeof(name_words[0]))
static const char *const bins[] = {"411111", "424242", "400000", "555555", "510510", "222300"};
#define BIN_COUNT (sizeof(bins) / sizeof(bins[0]))

#define MERCHANTS_PER_CITY 4

struct merchant {
    char id[8];
    char name[64];
    size_t category;
    size_t city;
};

struct card {
    char pan[17];
    size_t home;
};

struct txn {
    int64_t t;
    size_t card;
    size_t merchant;
    int64_t cents;
};

static struct merchant merchants[FIN_CITY_COUNT * MERCHANTS_PER_CITY];
static struct card cards[MAX_CARDS];
static struct txn *txns;
static size_t txn_count;

static int
luhn_digit(const char *digits15)
{
    int sum = 0;
    /* From the right of the full 16-digit number, every second digit starting with the one
     * before the check digit is doubled. */
    for (int i = 14, dbl = 1; i >= 0; i--, dbl = !dbl) {
        int d = digits15[i] - '0';
        if (dbl) {
            d *= 2;
            if (d > 9) {
                d -= 9;
            }
        }
        sum += d;
    }
    return (10 - sum % 10) % 10;
}

static void
make_pan(struct rng *r, char out[17])
{
    const char *bin = bins[below(r, BIN_COUNT)];
    memcpy(out, bin, 6);
    for (int i = 6; i < 15; i++) {
        out[i] = (char)('0' + below(r, 10));
    }
    out[15] = (char)('0' + luhn_digit(out));
    out[16] = '\0';
}

static int
add_txn(int64_t t, size_t card, size_t merchant, int64_t cents)
{
    if (txn_count == MAX_TXNS) {
        fprintf(stderr, "gen-transactions: more than %d transactions; use fewer cards or days\n",
                MAX_TXNS);
        return -1;
    }
    txns[txn_count++] = (struct txn){t, card, merchant, cents};
    return 0;
}

static size_t
merchant_in(struct rng *r, size_t city, size_t category_or_max)
{
    size_t base = city * MERCHANTS_PER_CITY;
    if (category_or_max < CATEGORY_COUNT) {
        for (size_t i = 0; i < MERCHANTS_PER_CITY; i++) {
            if (merchants[base + i].category == category_or_max) {
                return base + i;
            }
        }
    }
    return base + below(r, MERCHANTS_PER_CITY);
}

static int64_t
amount(struct rng *r, size_t category)
{
    int64_t lo = cat_lo[category], hi = cat_hi[category];
    /* Skewed towards small amounts: the smaller of two draws, most of the time. */
    int64_t a = lo + (int64_t)below(r, (uint64_t)(hi - lo));
    int64_t b = lo + (int64_t)below(r, (uint64_t)(hi - lo));
    return below(r, 4) == 0 ? (a > b ? a : b) : (a < b ? a : b);
}

static size_t
city_index(const char *name)
{
    for (size_t i = 0; i < FIN_CITY_COUNT; i++) {
        if (strcmp(fin_cities[i].name, name) == 0) {
            return i;
        }
    }
    return 0;
}

/* Card k of the 8 that carry injected patterns (distinct for ncards >= 20). */
static size_t
pattern_card(int k, uint64_t ncards)
{
    return 3 + (size_t)k * (size_t)(ncards / 8);
}

/* A start time t0 (absolute) for `need` seconds of injected purchases on card c, at least two
 * hours from the card's purchases so far. */
static int
free_slot(struct rng *r, size_t c, int64_t span, int64_t need, int64_t *out)
{
    for (int attempt = 0; attempt < 10000; attempt++) {
        int64_t t0 = START_EPOCH + 7200 + (int64_t)below(r, (uint64_t)(span - need - 14400));
        int clear = 1;
        for (size_t i = 0; i < txn_count && clear; i++) {
            clear = txns[i].card != c || txns[i].t < t0 - 7200 || txns[i].t > t0 + need + 7200;
        }
        if (clear) {
            *out = t0;
            return 0;
        }
    }
    fprintf(stderr, "gen-transactions: no free time for an injected pattern; use more days\n");
    return -1;
}

static int
cmp_txn(const void *a, const void *b)
{
    const struct txn *x = a, *y = b;
    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1;
    }
    if (x->card != y->card) {
        return x->card < y->card ? -1 : 1;
    }
    return x->merchant < y->merchant ? -1 : (x->merchant > y->merchant);
}

static void
iso_time(int64_t t, char out[32])
{
    /* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm). */
    int64_t days = t / 86400, secs = t % 86400;
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02uZ", (unsigned)y, (unsigned)m, (unsigned)d,
             (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60), (unsigned)(secs % 60));
}

static void
masked(const char *pan, char out[17])
{
    memcpy(out, pan, 6);
    memset(out + 6, '*', 6);
    memcpy(out + 12, pan + 12, 4);
    out[16] = '\0';
}

static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: gen-transactions [--seed N] [--cards N] [--days N] [-o OUT.csv]\n"
               "                        [--truth TRUTH.csv]\n"
               "Writes realistic card transactions (CSV, Luhn-valid test card numbers) with\n"
               "injected fraud patterns; --truth lists the injected patterns by masked card.\n"
               "defaults: --seed 1 --cards 200 --days 30, output to standard output.\n");
}

int
main(int argc, char **argv)
{
    uint64_t seed = 1, ncards = 200, ndays = 30;
    const char *out_path = NULL, *truth_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        int bad = v == NULL;
        if (!bad && strcmp(a, "--seed") == 0) {
            bad = parse_u64(v, UINT64_MAX, &seed);
        } else if (!bad && strcmp(a, "--cards") == 0) {
            bad = parse_u64(v, MAX_CARDS, &ncards) || ncards < 20;
        } else if (!bad && strcmp(a, "--days") == 0) {
            bad = parse_u64(v, 365, &ndays) || ndays < 7;
        } else if (!bad && (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)) {
            out_path = v;
        } else if (!bad && strcmp(a, "--truth") == 0) {
            truth_path = v;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr,
                    "gen-transactions: bad or incomplete option '%s' (--cards 20..%d, "
                    "--days 7..365)\n",
                    a, MAX_CARDS);
            usage(stderr);
            return 2;
        }
        i++;
    }

    struct rng r = {seed};
    txns = calloc(MAX_TXNS, sizeof(*txns));
    if (txns == NULL) {
        fprintf(stderr, "gen-transactions: out of memory\n");
        return 1;
    }

    /* Merchants: MERCHANTS_PER_CITY per city, each of another category. */
    for (size_t c = 0; c < FIN_CITY_COUNT; c++) {
        size_t first = below(&r, CATEGORY_COUNT);
        for (size_t k = 0; k < MERCHANTS_PER_CITY; k++) {
            struct merchant *m = &merchants[c * MERCHANTS_PER_CITY + k];
            m->category = (first + k * 2 + (k == 3)) % CATEGORY_COUNT;
            m->city = c;
            snprintf(m->id, sizeof(m->id), "M%04zu", c * MERCHANTS_PER_CITY + k + 1);
            snprintf(m->name, sizeof(m->name), "%s %s %s", name_words[below(&r, NAME_WORD_COUNT)],
                     cat_nouns[m->category], fin_cities[c].name);
        }
    }

    /* Cards, each with a home city; the masked PAN is unique. */
    for (size_t i = 0; i < ncards; i++) {
        for (;;) {
            make_pan(&r, cards[i].pan);
            int clash = 0;
            for (size_t j = 0; j < i && !clash; j++) {
                clash = memcmp(cards[j].pan, cards[i].pan, 6) == 0 &&
                        memcmp(cards[j].pan + 12, cards[i].pan + 12, 4) == 0;
            }
            if (!clash) {
                break;
            }
        }
        cards[i].home = (size_t)below(&r, FIN_CITY_COUNT);
    }

    /* The cards that carry injected patterns: the geography ones live where their trip starts,
     * the commuter in Geneva. */
    static const char *const far_from[] = {"London", "Paris", "New York"};
    static const char *const far_to[] = {"Singapore", "Lagos", "Tokyo", "Sao Paulo"};
    for (int k = 0; k < 3; k++) {
        cards[pattern_card(3 + k, ncards)].home = city_index(far_from[k]);
    }
    cards[pattern_card(7, ncards)].home = city_index("Geneva");

    /* Ordinary spending: 6..24 purchases per card, at least MIN_GAP apart. */
    int64_t span = (int64_t)ndays * 86400;
    for (size_t i = 0; i < ncards; i++) {
        size_t n = 6 + (size_t)below(&r, 19);
        int64_t room = span - (int64_t)n * MIN_GAP;
        int64_t pts[24];
        for (size_t k = 0; k < n; k++) {
            pts[k] = (int64_t)below(&r, (uint64_t)room);
        }
        for (size_t a = 1; a < n; a++) { /* insertion sort */
            int64_t v = pts[a];
            size_t b = a;
            for (; b > 0 && pts[b - 1] > v; b--) {
                pts[b] = pts[b - 1];
            }
            pts[b] = v;
        }
        for (size_t k = 0; k < n; k++) {
            size_t m = merchant_in(&r, cards[i].home, CATEGORY_COUNT);
            if (add_txn(START_EPOCH + pts[k] + (int64_t)k * MIN_GAP, i, m,
                        amount(&r, merchants[m].category)) != 0) {
                return 1;
            }
        }
    }

    FILE *truth = NULL;
    if (truth_path != NULL) {
        truth = fopen(truth_path, "w");
        if (truth == NULL) {
            fprintf(stderr, "gen-transactions: cannot create %s: %s\n", truth_path,
                    strerror(errno));
            return 1;
        }
        fprintf(truth, "card,pattern\n");
    }

    /* Injected patterns, each on its own card, at a time at least two hours away from the
     * card's ordinary purchases (so that only the injected purchases can make a rule fire). */
    char mask[17];
    for (int k = 0; k < 3; k++) { /* velocity */
        size_t c = pattern_card(k, ncards);
        size_t n = 5 + (size_t)below(&r, 5);
        int64_t t0;
        if (free_slot(&r, c, span, 600, &t0) != 0) {
            return 1;
        }
        for (size_t j = 0; j < n; j++) {
            size_t cat = j % 2 ? 3 : 7; /* electronics, entertainment: easy to resell */
            size_t m = merchant_in(&r, cards[c].home, cat);
            if (add_txn(t0 + (int64_t)(j * 480 / n), c, m, amount(&r, merchants[m].category))) {
                return 1;
            }
        }
        masked(cards[c].pan, mask);
        if (truth) {
            fprintf(truth, "%s,velocity\n", mask);
        }
    }
    for (int k = 0; k < 3; k++) { /* geography: the card's home is far_from[k] */
        size_t c = pattern_card(3 + k, ncards);
        size_t to = city_index(far_to[((uint64_t)k + seed) % 4]);
        int64_t t0;
        if (free_slot(&r, c, span, 3600, &t0) != 0) {
            return 1;
        }
        size_t m1 = merchant_in(&r, cards[c].home, 0), m2 = merchant_in(&r, to, 3);
        if (add_txn(t0, c, m1, amount(&r, 0)) ||
            add_txn(t0 + 900 + (int64_t)below(&r, 2100), c, m2, amount(&r, 3))) {
            return 1;
        }
        masked(cards[c].pan, mask);
        if (truth) {
            fprintf(truth, "%s,geography\n", mask);
        }
    }
    { /* near-miss: 4 purchases in 9 minutes */
        size_t c = pattern_card(6, ncards);
        int64_t t0;
        if (free_slot(&r, c, span, 600, &t0) != 0) {
            return 1;
        }
        for (int j = 0; j < 4; j++) {
            size_t m = merchant_in(&r, cards[c].home, CATEGORY_COUNT);
            if (add_txn(t0 + j * 180, c, m, amount(&r, merchants[m].category))) {
                return 1;
            }
        }
        masked(cards[c].pan, mask);
        if (truth) {
            fprintf(truth, "%s,near-miss\n", mask);
        }
    }
    { /* commuter: home Geneva, then Annecy half an hour later */
        size_t c = pattern_card(7, ncards);
        int64_t t0;
        if (free_slot(&r, c, span, 3600, &t0) != 0) {
            return 1;
        }
        size_t m1 = merchant_in(&r, cards[c].home, CATEGORY_COUNT);
        size_t m2 = merchant_in(&r, city_index("Annecy"), 1);
        if (add_txn(t0, c, m1, amount(&r, merchants[m1].category)) ||
            add_txn(t0 + 1800, c, m2, amount(&r, merchants[m2].category))) {
            return 1;
        }
        masked(cards[c].pan, mask);
        if (truth) {
            fprintf(truth, "%s,commuter\n", mask);
        }
    }
    if (truth != NULL && fclose(truth) != 0) {
        fprintf(stderr, "gen-transactions: writing %s failed\n", truth_path);
        return 1;
    }

    qsort(txns, txn_count, sizeof(*txns), cmp_txn);

    FILE *out = stdout;
    if (out_path != NULL) {
        out = fopen(out_path, "w");
        if (out == NULL) {
            fprintf(stderr, "gen-transactions: cannot create %s: %s\n", out_path, strerror(errno));
            return 1;
        }
    }
    fprintf(out, "txn_id,timestamp,card_number,merchant_id,merchant_name,category,city,country,"
                 "amount,currency\n");
    for (size_t i = 0; i < txn_count; i++) {
        const struct txn *x = &txns[i];
        const struct merchant *m = &merchants[x->merchant];
        char ts[32];
        iso_time(x->t, ts);
        fprintf(out, "T%07zu,%s,%s,%s,%s,%s,%s,%s,%" PRId64 ".%02d,USD\n", i + 1, ts,
                cards[x->card].pan, m->id, m->name, categories[m->category],
                fin_cities[m->city].name, fin_cities[m->city].country, x->cents / 100,
                (int)(x->cents % 100));
    }
    if (fflush(out) != 0 || ferror(out) || (out != stdout && fclose(out) != 0)) {
        fprintf(stderr, "gen-transactions: writing the output failed\n");
        return 1;
    }
    free(txns);
    return 0;
}
