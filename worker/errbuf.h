/* The size of the caller's buffer that functions returning -1 fill with a
 * message naming what failed, shared by the engine and the coordinator. */
#ifndef DDT_ERRBUF_H
#define DDT_ERRBUF_H

#define DDT_ERRLEN 512

#endif
