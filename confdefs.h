/* confdefs.h */
#define PACKAGE_NAME "ddtrain"
#define PACKAGE_TARNAME "ddtrain"
#define PACKAGE_VERSION "0.1.0"
#define PACKAGE_STRING "ddtrain 0.1.0"
#define PACKAGE_BUGREPORT ""
#define PACKAGE_URL ""
#define PACKAGE "ddtrain"
#define VERSION "0.1.0"
