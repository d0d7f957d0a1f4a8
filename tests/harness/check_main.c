/* The main() of every libcheck test: see check_main.h. */
#include "tests/harness/check_main.h"

#include "common/err.h"
#include "common/http_client.h"
#include "common/keys.h"

#include <stdlib.h>

int th_check_init_crypto_http(void)
{
    return sw_crypto_init() == SW_OK && sw_http_global_init() == SW_OK ? 0 : -1;
}

int main(void)
{
    const struct th_check_main *t = &th_check_main;
    SRunner *sr;
    int failed;

    if (t->before && t->before() != 0)
        return EXIT_FAILURE;
    sr = srunner_create(t->suite());
    if (t->fork != CK_FORK_GETENV)
        srunner_set_fork_status(sr, t->fork);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (t->after)
        t->after();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
