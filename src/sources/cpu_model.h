/* cpu_model.h — the modelled CPU power where no counters can be read.
 *
 * Model (Cloud Carbon Footprint's linear model, per vCPU):
 *   power_w = n_cpus * (min_w + (max_w - min_w) * utilisation)
 * with utilisation = busy ticks / total ticks of /proc/stat over the interval,
 * and defaults min_w = 0.74 W, max_w = 3.5 W per vCPU (CCF's AWS averages).
 * Energy is power times the interval: a model, always labelled `modeled`.
 */
#ifndef WM_SENSORS_CPU_MODEL_H
#define WM_SENSORS_CPU_MODEL_H

typedef struct wm_cpu_model {
	double min_w_per_cpu;
	double max_w_per_cpu;
	int n_cpus;
} wm_cpu_model;

/* Power in watts at utilisation util (clamped to 0..1). */
double wm_cpu_model_power_w(const wm_cpu_model *m, double util);

#endif
