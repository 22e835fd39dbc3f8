/* nvml_api.h — our own declarations of the NVML subset wattmeter uses.
 *
 * No NVIDIA header or library is needed to build: libnvidia-ml is loaded at
 * run time with dlopen (nvml.c), and these declarations give the types and
 * the function-pointer signatures. They follow NVML's API reference (nvml.h
 * of CUDA 12.x; the layouts used here have been stable since NVML 10, apart
 * from the process-info structs, whose versions are spelled out below).
 *
 * Units are NVML's: energy in millijoules, power in milliwatts, memory in
 * bytes, clocks in MHz, temperature in degrees C, utilisation in percent,
 * process-utilisation timestamps in microseconds of CPU time since the epoch.
 *
 * The mock library of the tests (tests/mock_nvml/mock_nvml.c) implements the
 * same declarations, so a layout mistake here would show in the tests only if
 * it is also in the mock: the layouts are therefore checked below with
 * static assertions against the sizes nvml.h gives on LP64 Linux.
 */
#ifndef WM_SOURCES_NVML_API_H
#define WM_SOURCES_NVML_API_H

#include <stddef.h>

typedef enum nvmlReturn_enum {
	NVML_SUCCESS = 0,
	NVML_ERROR_UNINITIALIZED = 1,
	NVML_ERROR_INVALID_ARGUMENT = 2,
	NVML_ERROR_NOT_SUPPORTED = 3,
	NVML_ERROR_NO_PERMISSION = 4,
	NVML_ERROR_ALREADY_INITIALIZED = 5,
	NVML_ERROR_NOT_FOUND = 6,
	NVML_ERROR_INSUFFICIENT_SIZE = 7,
	NVML_ERROR_INSUFFICIENT_POWER = 8,
	NVML_ERROR_DRIVER_NOT_LOADED = 9,
	NVML_ERROR_TIMEOUT = 10,
	NVML_ERROR_IRQ_ISSUE = 11,
	NVML_ERROR_LIBRARY_NOT_FOUND = 12,
	NVML_ERROR_FUNCTION_NOT_FOUND = 13,
	NVML_ERROR_CORRUPTED_INFOROM = 14,
	NVML_ERROR_GPU_IS_LOST = 15,
	NVML_ERROR_RESET_REQUIRED = 16,
	NVML_ERROR_OPERATING_SYSTEM = 17,
	NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
	NVML_ERROR_IN_USE = 19,
	NVML_ERROR_MEMORY = 20,
	NVML_ERROR_NO_DATA = 21,
	NVML_ERROR_UNKNOWN = 999,
} nvmlReturn_t;

typedef struct nvmlDevice_st *nvmlDevice_t;

/* Buffer sizes nvml.h recommends. */
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE 80

typedef struct nvmlUtilization_st {
	unsigned int gpu;      /* percent of time a kernel ran (SM busy) over the driver's window */
	unsigned int memory;   /* percent of time device memory was read or written */
} nvmlUtilization_t;

typedef struct nvmlMemory_st {
	unsigned long long total;  /* bytes */
	unsigned long long free;
	unsigned long long used;
} nvmlMemory_t;

typedef enum nvmlTemperatureSensors_enum {
	NVML_TEMPERATURE_GPU = 0,
} nvmlTemperatureSensors_t;

typedef enum nvmlClockType_enum {
	NVML_CLOCK_GRAPHICS = 0,
	NVML_CLOCK_SM = 1,
	NVML_CLOCK_MEM = 2,
	NVML_CLOCK_VIDEO = 3,
} nvmlClockType_t;

typedef struct nvmlPciInfo_st {
	char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
	unsigned int domain;
	unsigned int bus;
	unsigned int device;
	unsigned int pciDeviceId;
	unsigned int pciSubSystemId;
	char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];   /* "00000000:17:00.0" */
} nvmlPciInfo_t;

/* nvmlDeviceGet{Compute,Graphics}RunningProcesses (no suffix, i.e. _v1). */
typedef struct nvmlProcessInfo_v1_st {
	unsigned int pid;
	unsigned long long usedGpuMemory;  /* bytes; NVML_VALUE_NOT_AVAILABLE when unknown */
} nvmlProcessInfo_v1_t;

/* _v2 (NVML 11) and _v3 (NVML 12) take the same four-field layout; _v3
 * exists because the _v2 entry point was once shipped with the v1 layout. */
typedef struct nvmlProcessInfo_v2_st {
	unsigned int pid;
	unsigned long long usedGpuMemory;
	unsigned int gpuInstanceId;        /* MIG: 0xFFFFFFFF when not in MIG mode */
	unsigned int computeInstanceId;
} nvmlProcessInfo_v2_t;
typedef nvmlProcessInfo_v2_t nvmlProcessInfo_v3_t;

#define NVML_VALUE_NOT_AVAILABLE (~0ULL)

typedef struct nvmlProcessUtilizationSample_st {
	unsigned int pid;
	unsigned long long timeStamp;      /* CPU timestamp, microseconds */
	unsigned int smUtil;               /* percent */
	unsigned int memUtil;
	unsigned int encUtil;
	unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

typedef enum nvmlValueType_enum {
	NVML_VALUE_TYPE_DOUBLE = 0,
	NVML_VALUE_TYPE_UNSIGNED_INT = 1,
	NVML_VALUE_TYPE_UNSIGNED_LONG = 2,
	NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3,
	NVML_VALUE_TYPE_SIGNED_LONG_LONG = 4,
	NVML_VALUE_TYPE_SIGNED_INT = 5,
	NVML_VALUE_TYPE_UNSIGNED_SHORT = 6,
} nvmlValueType_t;

typedef union nvmlValue_st {
	double dVal;
	int siVal;
	unsigned int uiVal;
	unsigned long ulVal;
	unsigned long long ullVal;
	signed long long sllVal;
	unsigned short usVal;
} nvmlValue_t;

typedef struct nvmlFieldValue_st {
	unsigned int fieldId;      /* NVML_FI_* */
	unsigned int scopeId;      /* 0 for device-wide fields */
	long long timestamp;       /* microseconds since the epoch */
	long long latencyUsec;
	nvmlValueType_t valueType;
	nvmlReturn_t nvmlReturn;   /* per field: NVML_SUCCESS or why not */
	nvmlValue_t value;
} nvmlFieldValue_t;

/* Power fields (milliwatts). AVERAGE is a 1 s average on Ampere (except
 * GA100) and newer; INSTANT is supported on all architectures with a driver
 * that knows the field (R520+). */
#define NVML_FI_DEV_POWER_AVERAGE 185
#define NVML_FI_DEV_POWER_INSTANT 186

#define NVML_DEVICE_MIG_DISABLE 0
#define NVML_DEVICE_MIG_ENABLE 1

/* Function signatures, as typedefs for the dlsym'd pointers. */
typedef nvmlReturn_t (*nvml_init_fn)(void);
typedef nvmlReturn_t (*nvml_shutdown_fn)(void);
typedef const char *(*nvml_error_string_fn)(nvmlReturn_t);
typedef nvmlReturn_t (*nvml_get_count_fn)(unsigned int *count);
typedef nvmlReturn_t (*nvml_get_handle_fn)(unsigned int index, nvmlDevice_t *dev);
typedef nvmlReturn_t (*nvml_sys_string_fn)(char *buf, unsigned int len);
typedef nvmlReturn_t (*nvml_dev_string_fn)(nvmlDevice_t dev, char *buf, unsigned int len);
typedef nvmlReturn_t (*nvml_dev_pci_fn)(nvmlDevice_t dev, nvmlPciInfo_t *pci);
typedef nvmlReturn_t (*nvml_dev_uint_fn)(nvmlDevice_t dev, unsigned int *v);
typedef nvmlReturn_t (*nvml_dev_ull_fn)(nvmlDevice_t dev, unsigned long long *v);
typedef nvmlReturn_t (*nvml_dev_util_fn)(nvmlDevice_t dev, nvmlUtilization_t *u);
typedef nvmlReturn_t (*nvml_dev_mem_fn)(nvmlDevice_t dev, nvmlMemory_t *m);
typedef nvmlReturn_t (*nvml_dev_temp_fn)(nvmlDevice_t dev, nvmlTemperatureSensors_t sensor, unsigned int *c);
typedef nvmlReturn_t (*nvml_dev_clock_fn)(nvmlDevice_t dev, nvmlClockType_t type, unsigned int *mhz);
typedef nvmlReturn_t (*nvml_dev_mig_mode_fn)(nvmlDevice_t dev, unsigned int *current, unsigned int *pending);
typedef nvmlReturn_t (*nvml_dev_fields_fn)(nvmlDevice_t dev, int count, nvmlFieldValue_t *values);
typedef nvmlReturn_t (*nvml_dev_procs_fn)(nvmlDevice_t dev, unsigned int *count, void *infos);
typedef nvmlReturn_t (*nvml_dev_proc_util_fn)(nvmlDevice_t dev, nvmlProcessUtilizationSample_t *samples,
					      unsigned int *count, unsigned long long last_seen_us);
typedef nvmlReturn_t (*nvml_dev_mig_handle_fn)(nvmlDevice_t dev, unsigned int index, nvmlDevice_t *mig);

/* Layouts as nvml.h lays them out on LP64 Linux (x86-64, aarch64). */
#if defined(__LP64__)
_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t layout");
_Static_assert(sizeof(nvmlProcessInfo_v1_t) == 16, "nvmlProcessInfo_v1_t layout");
_Static_assert(sizeof(nvmlProcessInfo_v2_t) == 24, "nvmlProcessInfo_v2_t layout");
_Static_assert(sizeof(nvmlProcessUtilizationSample_t) == 32, "nvmlProcessUtilizationSample_t layout");
_Static_assert(offsetof(nvmlFieldValue_t, value) == 32 && sizeof(nvmlFieldValue_t) == 40,
	       "nvmlFieldValue_t layout");
_Static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t layout");
#endif

#endif
