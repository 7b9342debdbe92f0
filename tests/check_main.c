/* The unit-test runner: every module's suite in one srunner. */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
    SRunner *r = srunner_create(rng_suite());
    srunner_add_suite(r, spec_suite());
    srunner_add_suite(r, config_suite());
    srunner_add_suite(r, layers_suite());
    srunner_add_suite(r, pool_suite());
    srunner_add_suite(r, conv_suite());
    srunner_add_suite(r, res_suite());
    srunner_add_suite(r, model_suite());
    srunner_add_suite(r, models_suite());
    srunner_add_suite(r, optim_suite());
    srunner_add_suite(r, dataset_suite());
    srunner_add_suite(r, images_suite());
    srunner_add_suite(r, schedule_suite());
    srunner_add_suite(r, adaptive_suite());
    srunner_add_suite(r, ckpt_suite());
    srunner_add_suite(r, control_suite());
    srunner_add_suite(r, analysis_suite());
    srunner_add_suite(r, signals_suite());
    srunner_add_suite(r, inputs_suite());
    srunner_add_suite(r, watch_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
