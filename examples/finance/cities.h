/*
 * The cities of the card-transaction example: the generator (gen_transactions.c) places merchants
 * in them and the enclave (finance_enclave.c) uses their coordinates for the geography rule.
 * Coordinates are the city centres, in degrees, to two decimals.
 */
#ifndef CLOISTER_EXAMPLE_FINANCE_CITIES_H
#define CLOISTER_EXAMPLE_FINANCE_CITIES_H

struct fin_city {
    const char *name;
    const char *country; /* ISO 3166-1 alpha-2 */
    double lat, lon;
};

static const struct fin_city fin_cities[] = {
    {"London", "GB", 51.51, -0.13},
    {"Manchester", "GB", 53.48, -2.24},
    {"Paris", "FR", 48.86, 2.35},
    {"Lyon", "FR", 45.76, 4.84},
    {"Annecy", "FR", 45.90, 6.13},
    {"Geneva", "CH", 46.20, 6.14},
    {"Zurich", "CH", 47.37, 8.54},
    {"Berlin", "DE", 52.52, 13.40},
    {"Munich", "DE", 48.14, 11.58},
    {"Madrid", "ES", 40.42, -3.70},
    {"Milan", "IT", 45.46, 9.19},
    {"Amsterdam", "NL", 52.37, 4.90},
    {"New York", "US", 40.71, -74.01},
    {"Chicago", "US", 41.88, -87.63},
    {"San Francisco", "US", 37.77, -122.42},
    {"Toronto", "CA", 43.65, -79.38},
    {"Sao Paulo", "BR", -23.55, -46.63},
    {"Singapore", "SG", 1.35, 103.82},
    {"Tokyo", "JP", 35.68, 139.69},
    {"Sydney", "AU", -33.87, 151.21},
    {"Lagos", "NG", 6.52, 3.38},
    {"Dubai", "AE", 25.20, 55.27},
};

#define FIN_CITY_COUNT (sizeof(fin_cities) / sizeof(fin_cities[0]))

#endif
