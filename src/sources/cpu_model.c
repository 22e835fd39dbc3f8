/* cpu_model.c — see cpu_model.h. */
#include "sources/cpu_model.h"

double wm_cpu_model_power_w(const wm_cpu_model *m, double util)
{
	if (!(util >= 0.0)) /* also catches NaN */
		util = 0.0;
	if (util > 1.0)
		util = 1.0;
	return (double)m->n_cpus * (m->min_w_per_cpu + (m->max_w_per_cpu - m->min_w_per_cpu) * util);
}
