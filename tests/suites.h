/* Every unit-test suite, one per module, gathered by check_main.c. */
#ifndef DDT_SUITES_H
#define DDT_SUITES_H

#include <check.h>

Suite *adaptive_suite(void);
Suite *analysis_suite(void);
Suite *ckpt_suite(void);
Suite *config_suite(void);
Suite *control_suite(void);
Suite *conv_suite(void);
Suite *dataset_suite(void);
Suite *images_suite(void);
Suite *inputs_suite(void);
Suite *layers_suite(void);
Suite *model_suite(void);
Suite *models_suite(void);
Suite *optim_suite(void);
Suite *pool_suite(void);
Suite *res_suite(void);
Suite *rng_suite(void);
Suite *schedule_suite(void);
Suite *signals_suite(void);
Suite *spec_suite(void);
Suite *watch_suite(void);

#endif
