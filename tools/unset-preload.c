/* Preloaded after the ASan runtime by `make check-asan` (mk/sanitize.mk):
 * drops LD_PRELOAD from this process's environment once the loader has
 * used it, so that the servers the specs spawn (Python, Postfix) run
 * without the ASan runtime (which slows Python's start by ~2 s and breaks
 * the deadline specs); lua5.4 children get it back from the wrapper on
 * PATH. */
#include <stdlib.h>

__attribute__((constructor)) static void unset_preload(void)
{
    unsetenv("LD_PRELOAD");
}
