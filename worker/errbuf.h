/* The one error-buffer convention of the engine, the coordinator and the tests.
 *
 * A function that can fail takes `char *err, size_t errlen` as its last two
 * parameters and, before returning its error code, writes a message naming
 * what failed with snprintf(err, errlen, ...). Callers pass `sizeof buf` for
 * an array, or the errlen they were given; a caller that adds its own prefix
 * ("--resume: " + a checkpoint error) hands the callee a DDT_ERRLEN buffer of
 * its own and then writes prefix + message into its caller's buffer.
 *
 * DDT_ERRLEN is the size to declare such a buffer with. It replaced three
 * sizes (the engine's and the config's 512, the checkpoint's 1024) with the
 * largest, so no message that fitted before is cut now. The longest messages
 * without a path (the memory check with its model spec, an option value
 * refused with its allowed choices, a resumed option that differs) stay under
 * about 700 characters with every value at its longest (a spec or option value
 * is at most CONFIG_STRLEN - 1 = 255), which leaves room for the short
 * prefixes nesting adds (an option name, "config file PATH line N: "). Only
 * a path of several hundred characters can overflow a buffer, and snprintf
 * then cuts the end: every nesting writes the inner message last, so the
 * prefixes that say which option or file failed survive. The buffers the
 * commands print (train's, eval's) are 2 * DDT_ERRLEN, so there a prefix plus
 * a whole inner message always fit. */
#ifndef DDT_ERRBUF_H
#define DDT_ERRBUF_H

#define DDT_ERRLEN 1024

#endif
