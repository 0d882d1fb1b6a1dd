/* dpt._dpt: the CPython extension behind the `dpt` package, bound against include/dpt.h alone.
 *
 * Thin on purpose: the Python layer (dpt/__init__.py) resolves paths, options and array shapes and
 * hands this module float32 C-contiguous arrays of the exact shapes; the checks here only keep a
 * wrong call from reaching the library. Every library call that computes runs with the GIL
 * released; the progress callback takes it back briefly to run signal handlers (Ctrl-C cancels)
 * and the caller's own progress function. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <stdarg.h>
#include <string.h>

#include "dpt.h"

/* ------------------------------------------------------------------------------------------ */
/* errors                                                                                       */

/* Python classes of the statuses, registered by dpt/__init__.py (index = dpt_status). */
#define N_STATUS 9
static PyObject *error_base;
static PyObject *error_classes[N_STATUS];

static PyObject *raise_status(dpt_status st, const char *message) {
    PyObject *cls = (st > 0 && st < N_STATUS && error_classes[st]) ? error_classes[st] : error_base;
    if (!cls) cls = PyExc_RuntimeError;
    const char *msg = (message && *message) ? message : dpt_strerror(st);
    PyObject *exc = PyObject_CallFunction(cls, "s", msg);
    if (!exc) return NULL;
    PyObject *code = PyLong_FromLong((long)st);
    if (code) {
        PyObject_SetAttrString(exc, "status", code);
        Py_DECREF(code);
    }
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *raise_err(const dpt_error *err, dpt_status st) { return raise_status(st, err->message); }

static PyObject *py_register_errors(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *base, *seq;
    if (!PyArg_ParseTuple(args, "OO", &base, &seq)) return NULL;
    if (!PySequence_Check(seq) || PySequence_Size(seq) != N_STATUS) {
        PyErr_SetString(PyExc_TypeError, "_register_errors: a sequence of 9 classes");
        return NULL;
    }
    Py_XSETREF(error_base, Py_NewRef(base));
    for (int i = 0; i < N_STATUS; i++) {
        PyObject *c = PySequence_GetItem(seq, i);
        if (!c) return NULL;
        Py_XSETREF(error_classes[i], c);
    }
    Py_RETURN_NONE;
}

/* dpt.InvalidArgumentError (a ValueError) with a formatted message. Returns NULL. */
static PyObject *invalid(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (!msg) return NULL;
    const char *u = PyUnicode_AsUTF8(msg);
    if (u) raise_status(DPT_ERR_INVALID_ARG, u);
    Py_DECREF(msg);
    return NULL;
}

/* The library's warnings as Python warnings (class registered by dpt/__init__.py). The callback
 * may run on a library thread: it takes the GIL, which every computing call has released. */
static PyObject *warning_class;

static void log_cb(int level, const char *message, void *user) {
    (void)user;
    if (level < DPT_LOG_WARNING) return;   /* information: dropped, as the default logger does */
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);            /* a pending exception must survive the warning */
    if (PyErr_WarnEx(warning_class ? warning_class : PyExc_RuntimeWarning, message, 1) < 0)
        PyErr_Clear();                     /* warnings turned into errors cannot stop the library */
    PyErr_Restore(et, ev, tb);
    PyGILState_Release(g);
}

static PyObject *py_register_warning(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cls;
    if (!PyArg_ParseTuple(args, "O", &cls)) return NULL;
    Py_XSETREF(warning_class, Py_NewRef(cls));
    dpt_log_set_callback(log_cb, NULL);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ */
/* arrays                                                                                       */

/* obj as a float32 (or uint8 / int32) C-contiguous aligned array of ndim dims whose sizes match
 * dims[] (-1: any). Borrowed; NULL with dpt.InvalidArgumentError naming `what`. */
static PyArrayObject *want_array(PyObject *obj, const char *what, int type, int ndim, const npy_intp *dims) {
    if (!PyArray_Check(obj)) {
        invalid("%s: expected a numpy array", what);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if (PyArray_TYPE(a) != type || !PyArray_ISCARRAY_RO(a) || PyArray_ISBYTESWAPPED(a)) {
        invalid("%s: expected a C-contiguous native %s array", what,
                type == NPY_FLOAT32 ? "float32" : type == NPY_UINT8 ? "uint8" : "int32");
        return NULL;
    }
    if (PyArray_NDIM(a) != ndim) {
        invalid("%s: expected %d dimension(s), got %d", what, ndim, PyArray_NDIM(a));
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        if (dims && dims[i] >= 0 && PyArray_DIM(a, i) != dims[i]) {
            invalid("%s: dimension %d is %zd, expected %zd", what, i, (Py_ssize_t)PyArray_DIM(a, i),
                    (Py_ssize_t)dims[i]);
            return NULL;
        }
    return a;
}

static const float *f32(PyArrayObject *a) { return (const float *)PyArray_DATA(a); }

/* A new float32 array of the given dims holding a copy of src. */
static PyObject *new_f32(int ndim, const npy_intp *dims, const float *src) {
    PyObject *a = PyArray_SimpleNew(ndim, (npy_intp *)dims, NPY_FLOAT32);
    if (a && src) memcpy(PyArray_DATA((PyArrayObject *)a), src, (size_t)PyArray_NBYTES((PyArrayObject *)a));
    return a;
}

static void capsule_free(PyObject *cap) { dpt_free(PyCapsule_GetPointer(cap, "dpt.buffer")); }

/* A float32 array over a buffer the library malloc'ed: no copy, dpt_free'd with the array. */
static PyObject *adopt_f32(float *data, int ndim, const npy_intp *dims) {
    PyObject *a = PyArray_SimpleNewFromData(ndim, (npy_intp *)dims, NPY_FLOAT32, data);
    if (!a) {
        dpt_free(data);
        return NULL;
    }
    /* a zero-length result may come with a NULL buffer: nothing to own */
    if (!data) return a;
    PyObject *cap = PyCapsule_New(data, "dpt.buffer", capsule_free);
    if (!cap || PyArray_SetBaseObject((PyArrayObject *)a, cap) < 0) {
        if (!cap) dpt_free(data);
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

/* ------------------------------------------------------------------------------------------ */
/* progress, cancellation, replayed noise                                                       */

typedef struct progress_ctx {
    PyObject *callback;       /* optional callable(window, n_windows, step, n_steps) -> bool */
    PyObject *et, *ev, *tb;   /* the exception that stopped the call (signal handler or callback) */
} progress_ctx;

/* Called by the library once per diffusion step on the calling thread, without the GIL. */
static int progress_cb(void *user, int window, int n_windows, int step, int n_steps) {
    progress_ctx *c = user;
    PyGILState_STATE g = PyGILState_Ensure();
    int stop = 0;
    if (PyErr_CheckSignals() < 0) {
        stop = 1;
    } else if (c->callback) {
        PyObject *r = PyObject_CallFunction(c->callback, "iiii", window, n_windows, step, n_steps);
        if (!r) stop = 1;
        else {
            int t = PyObject_IsTrue(r);
            Py_DECREF(r);
            stop = t != 0;   /* true, or an error evaluating it */
        }
    }
    if (stop && PyErr_Occurred() && !c->et) PyErr_Fetch(&c->et, &c->ev, &c->tb);
    PyErr_Clear();
    PyGILState_Release(g);
    return stop;
}

/* After a call: the exception that cancelled it (restored, returns 1) or 0. */
static int progress_restore(progress_ctx *c) {
    if (!c->et) return 0;
    PyErr_Restore(c->et, c->ev, c->tb);
    c->et = c->ev = c->tb = NULL;
    return 1;
}

typedef struct replay {
    const float *data;
    size_t n, pos;
} replay;

static int replay_fn(void *user, float *dst, size_t n) {
    replay *r = user;
    if (r->n - r->pos < n) return 1;
    memcpy(dst, r->data + r->pos, sizeof(float) * n);
    r->pos += n;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* generation parameters from a dict (keys = dpt_gen_params fields)                           */

static int dict_get(PyObject *d, const char *key, PyObject **out) {
    *out = PyDict_GetItemString(d, key);   /* borrowed */
    return *out != NULL;
}

static int get_int(PyObject *d, const char *key, int *dst) {
    PyObject *v;
    if (!dict_get(d, key, &v)) return 0;
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (x < -2147483647L || x > 2147483647L) {
        PyErr_Format(PyExc_OverflowError, "%s: %ld out of range", key, x);
        return -1;
    }
    *dst = (int)x;
    return 0;
}

static int get_float(PyObject *d, const char *key, float *dst) {
    PyObject *v;
    if (!dict_get(d, key, &v)) return 0;
    double x = PyFloat_AsDouble(v);
    if (x == -1.0 && PyErr_Occurred()) return -1;
    *dst = (float)x;
    return 0;
}

static int get_u64(PyObject *d, const char *key, uint64_t *dst) {
    PyObject *v;
    if (!dict_get(d, key, &v)) return 0;
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    *dst = (uint64_t)x;
    return 0;
}

static int get_uint(PyObject *d, const char *key, unsigned *dst) {
    PyObject *v;
    if (!dict_get(d, key, &v)) return 0;
    unsigned long x = PyLong_AsUnsignedLong(v);
    if (x == (unsigned long)-1 && PyErr_Occurred()) return -1;
    *dst = (unsigned)x;
    return 0;
}

/* The params dict the Python layer built (every key optional; defaults otherwise). */
static int gen_params_from(PyObject *d, dpt_gen_params *p) {
    *p = dpt_gen_params_default();
    if (d == Py_None) return 0;
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "params: expected a dict");
        return -1;
    }
    if (get_int(d, "n_repetitions", &p->n_repetitions) || get_float(d, "scale_audio", &p->scale_audio) ||
        get_float(d, "scale_style", &p->scale_style) || get_int(d, "cfg_mode", &p->cfg_mode) ||
        get_uint(d, "cfg_conds", &p->cfg_conds) || get_float(d, "dt_ratio", &p->dt_ratio) ||
        get_float(d, "dt_min", &p->dt_min) || get_float(d, "dt_max", &p->dt_max) ||
        get_u64(d, "seed", &p->seed) || get_int(d, "n_threads", &p->n_threads) ||
        get_int(d, "steps", &p->steps) || get_float(d, "eta", &p->eta) ||
        get_float(d, "flexibility", &p->flexibility) || get_int(d, "zero_head_pose", &p->zero_head_pose) ||
        get_int(d, "no_context_audio_feat", &p->no_context_audio_feat))
        return -1;
    return 0;
}

static PyObject *py_gen_defaults(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    dpt_gen_params p = dpt_gen_params_default();
    return Py_BuildValue("{s:i,s:d,s:d,s:i,s:k,s:d,s:d,s:d,s:K,s:i,s:i,s:d,s:d,s:i,s:i}",
                         "n_repetitions", p.n_repetitions, "scale_audio", (double)p.scale_audio,
                         "scale_style", (double)p.scale_style, "cfg_mode", p.cfg_mode,
                         "cfg_conds", (unsigned long)p.cfg_conds, "dt_ratio", (double)p.dt_ratio,
                         "dt_min", (double)p.dt_min, "dt_max", (double)p.dt_max,
                         "seed", (unsigned long long)p.seed, "n_threads", p.n_threads, "steps", p.steps,
                         "eta", (double)p.eta, "flexibility", (double)p.flexibility,
                         "zero_head_pose", p.zero_head_pose, "no_context_audio_feat", p.no_context_audio_feat);
}

/* ------------------------------------------------------------------------------------------ */
/* module functions: version, audio                                                             */

static PyObject *py_version(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyUnicode_FromString(dpt_version());
}

static PyObject *py_audio_load(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *path_obj;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path_obj)) return NULL;
    float *s = NULL;
    size_t n = 0;
    dpt_error err = {0};
    dpt_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dpt_audio_load(PyBytes_AS_STRING(path_obj), &s, &n, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (st != DPT_OK) return raise_err(&err, st);
    npy_intp dims[1] = {(npy_intp)n};
    return adopt_f32(s, 1, dims);
}

static PyObject *py_audio_to_16k(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *obj;
    double rate;
    if (!PyArg_ParseTuple(args, "Od", &obj, &rate)) return NULL;
    npy_intp want[2] = {-1, -1};
    PyArrayObject *a = want_array(obj, "samples", NPY_FLOAT32, 2, want);
    if (!a) return NULL;
    float *s = NULL;
    size_t n = 0;
    dpt_error err = {0};
    dpt_status st;
    size_t frames = (size_t)PyArray_DIM(a, 0);
    int ch = (int)PyArray_DIM(a, 1);
    Py_BEGIN_ALLOW_THREADS
    st = dpt_audio_to_16k(f32(a), frames, ch, rate, &s, &n, &err);
    Py_END_ALLOW_THREADS
    if (st != DPT_OK) return raise_err(&err, st);
    npy_intp dims[1] = {(npy_intp)n};
    return adopt_f32(s, 1, dims);
}

static PyObject *py_audio_stats(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *obj;
    if (!PyArg_ParseTuple(args, "O", &obj)) return NULL;
    npy_intp want[1] = {-1};
    PyArrayObject *a = want_array(obj, "samples", NPY_FLOAT32, 1, want);
    if (!a) return NULL;
    float mean = 0, sd = 0;
    dpt_error err = {0};
    dpt_status st = dpt_audio_stats(f32(a), (size_t)PyArray_DIM(a, 0), &mean, &sd, &err);
    if (st != DPT_OK) return raise_err(&err, st);
    return Py_BuildValue("(dd)", (double)mean, (double)sd);
}

static PyObject *py_image_read(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *path_obj;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path_obj)) return NULL;
    dpt_image img = {0};
    dpt_error err = {0};
    dpt_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dpt_image_read(PyBytes_AS_STRING(path_obj), &img, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (st != DPT_OK) return raise_err(&err, st);
    npy_intp dims[3] = {img.height, img.width, 3};
    PyObject *a = PyArray_SimpleNew(3, dims, NPY_UINT8);
    if (a) memcpy(PyArray_DATA((PyArrayObject *)a), img.rgb, (size_t)img.width * img.height * 3);
    dpt_image_free(&img);
    return a;
}

/* ------------------------------------------------------------------------------------------ */
/* Model                                                                                        */

typedef struct {
    PyObject_HEAD
    dpt_model *model;
    dpt_model_info info;
    int n_threads;
    dpt_state *state;            /* the model's threads, kept between calls (made on first use) */
    PyThread_type_lock lock;     /* held while a call uses `state` */
} ModelObject;

static PyTypeObject ModelType;

static void Model_dealloc(ModelObject *self) {
    dpt_state_free(self->state);
    dpt_model_free(self->model);
    if (self->lock) PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "threads", "mmap", "precision", NULL};
    PyObject *path_obj;
    int threads = 0, use_mmap = 1;
    const char *precision = "f32";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|ips", kwlist, PyUnicode_FSConverter, &path_obj, &threads,
                                     &use_mmap, &precision))
        return -1;
    int prec;
    if (!strcmp(precision, "f32")) prec = DPT_PRECISION_F32;
    else if (!strcmp(precision, "bf16")) prec = DPT_PRECISION_BF16;
    else if (!strcmp(precision, "int8")) prec = DPT_PRECISION_INT8;
    else if (!strcmp(precision, "f16")) prec = DPT_PRECISION_F16;
    else {
        Py_DECREF(path_obj);
        invalid("precision: '%s' is not 'f32', 'bf16', 'int8' or 'f16'", precision);
        return -1;
    }
    if (self->model) {
        Py_DECREF(path_obj);
        PyErr_SetString(PyExc_RuntimeError, "Model already initialised");
        return -1;
    }
    if (threads < 0) {
        Py_DECREF(path_obj);
        invalid("threads: %d is negative (0 = all cores)", threads);
        return -1;
    }
    dpt_load_params lp = dpt_load_params_default();
    lp.use_mmap = use_mmap;
    lp.precision = prec;
    dpt_error err = {0};
    dpt_status st;
    dpt_model *m = NULL;
    Py_BEGIN_ALLOW_THREADS
    st = dpt_model_load(PyBytes_AS_STRING(path_obj), &lp, &m, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (st != DPT_OK) {
        raise_err(&err, st);
        return -1;
    }
    self->model = m;
    dpt_model_get_info(m, &self->info);
    self->n_threads = threads;
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int model_ready(ModelObject *self) {
    if (!self->model) {
        PyErr_SetString(PyExc_RuntimeError, "Model not initialised");
        return 0;
    }
    return 1;
}

/* The state for one call, with self->lock held (release with state_release), or NULL when another
 * thread uses it (the call then runs on threads of its own: same bits). */
static dpt_state *state_acquire(ModelObject *self, dpt_error *err, dpt_status *st) {
    *st = DPT_OK;
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) return NULL;
    if (!self->state) {
        *st = dpt_state_new(self->model, self->n_threads, &self->state, err);
        if (*st != DPT_OK) {
            PyThread_release_lock(self->lock);
            return NULL;
        }
    }
    return self->state;
}

static void state_release(ModelObject *self, dpt_state *s) {
    if (s) PyThread_release_lock(self->lock);
}

static PyObject *Model_info(ModelObject *self, void *closure) {
    (void)closure;
    if (!model_ready(self)) return NULL;
    const dpt_model_info *i = &self->info;
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    struct { const char *k; long long v; } ints[] = {
        {"target_is_noise", i->target_is_noise}, {"guide_audio", i->guide_audio},
        {"guide_style", i->guide_style}, {"cfg_independent", i->cfg_independent},
        {"n_diff_steps", i->n_diff_steps}, {"no_head_pose", i->no_head_pose},
        {"motion_dim", i->motion_dim}, {"use_style", i->use_style}, {"d_style", i->d_style},
        {"align_mask_width", i->align_mask_width}, {"use_learnable_pe", i->use_learnable_pe},
        {"use_indicator", i->use_indicator}, {"feature_dim", i->feature_dim}, {"n_heads", i->n_heads},
        {"n_layers", i->n_layers}, {"mlp_ratio", i->mlp_ratio}, {"n_motions", i->n_motions},
        {"n_prev_motions", i->n_prev_motions}, {"fps", i->fps}, {"pad_replicate", i->pad_replicate},
        {"audio_hidden_size", i->audio_hidden_size}, {"audio_layers", i->audio_layers},
        {"audio_heads", i->audio_heads}, {"audio_intermediate_size", i->audio_intermediate_size},
        {"has_style_encoder", i->has_style_encoder}, {"style_feature_dim", i->style_feature_dim},
        {"style_n_motions", i->style_n_motions}, {"style_motion_dim", i->style_motion_dim},
        {"n_tensors", i->n_tensors}, {"n_params_audio", i->n_params_audio},
        {"n_params_denoiser", i->n_params_denoiser}, {"n_params_style", i->n_params_style},
        {"n_params_total", i->n_params_total}, {"any_f16", i->any_f16},
        {"file_size", (long long)i->file_size}, {"precision", i->precision},
    };
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        PyObject *v = PyLong_FromLongLong(ints[k].v);
        if (!v || PyDict_SetItemString(d, ints[k].k, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    const char *strs[][2] = {{"path", i->path}, {"diff_schedule", i->diff_schedule}, {"audio_model", i->audio_model},
                             {"precision_name", i->precision_name}};
    for (size_t k = 0; k < 4; k++) {
        PyObject *v = PyUnicode_DecodeFSDefault(strs[k][1] ? strs[k][1] : "");
        if (!v || PyDict_SetItemString(d, strs[k][0], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

static PyObject *Model_meta(ModelObject *self, void *closure) {
    (void)closure;
    if (!model_ready(self)) return NULL;
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    int n = dpt_model_meta_count(self->model);
    for (int k = 0; k < n; k++) {
        dpt_meta_info mi;
        if (dpt_model_meta_at(self->model, k, &mi) != DPT_OK) continue;
        PyObject *v = mi.type == DPT_META_INT ? PyLong_FromLongLong((long long)mi.i)
                      : mi.type == DPT_META_FLOAT ? PyFloat_FromDouble(mi.f)
                                                  : PyUnicode_DecodeUTF8(mi.s ? mi.s : "", (Py_ssize_t)strlen(mi.s ? mi.s : ""), "replace");
        if (!v || PyDict_SetItemString(d, mi.key, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

static PyObject *Model_tensors(ModelObject *self, void *closure) {
    (void)closure;
    if (!model_ready(self)) return NULL;
    int n = dpt_model_tensor_count(self->model);
    PyObject *list = PyList_New(0);
    for (int k = 0; list && k < n; k++) {
        dpt_tensor_info ti;
        if (dpt_model_tensor_at(self->model, k, &ti) != DPT_OK) continue;
        PyObject *shape = PyTuple_New(ti.ndim);
        for (int d = 0; shape && d < ti.ndim; d++) PyTuple_SET_ITEM(shape, d, PyLong_FromLongLong((long long)ti.shape[d]));
        PyObject *item = shape ? Py_BuildValue("{s:s,s:s,s:N}", "name", ti.name, "dtype",
                                               ti.dtype == DPT_DTYPE_F16 ? "float16" : "float32", "shape", shape)
                               : NULL;
        if (!item || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(item);
    }
    return list;
}

/* _tensor(name) → its values as float32, in the stored shape */
static PyObject *Model_tensor(ModelObject *self, PyObject *args) {
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name)) return NULL;
    if (!model_ready(self)) return NULL;
    int k = dpt_model_tensor_find(self->model, name);
    if (k < 0) return invalid("tensor '%s': not in %s (see Model.tensors)", name, self->info.path ? self->info.path : "the model");
    dpt_tensor_info ti;
    dpt_error err = {0};
    dpt_status st = dpt_model_tensor_at(self->model, k, &ti);
    if (st != DPT_OK) return raise_status(st, "tensor directory");
    npy_intp dims[4];
    for (int d = 0; d < ti.ndim; d++) dims[d] = (npy_intp)ti.shape[d];
    PyObject *out = new_f32(ti.ndim, dims, NULL);
    if (!out) return NULL;
    float *dst = (float *)PyArray_DATA((PyArrayObject *)out);
    Py_BEGIN_ALLOW_THREADS
    st = dpt_model_tensor_read(self->model, k, dst, (size_t)ti.n_elements, &err);
    Py_END_ALLOW_THREADS
    if (st != DPT_OK) {
        Py_DECREF(out);
        return raise_err(&err, st);
    }
    return out;
}

static PyObject *Model_threads(ModelObject *self, void *closure) {
    (void)closure;
    return PyLong_FromLong(self->n_threads);
}

/* A dpt_result as {exp (n, L, 50), pose (n, L, 6), shape (n, L, 100), draws_used}. */
static PyObject *result_dict(const dpt_result *r, Py_ssize_t draws_used) {
    const int N = r->n_repetitions, L = r->n_frames;
    npy_intp de[3] = {N, L, DPT_N_EXP}, dp[3] = {N, L, DPT_N_POSE}, ds[3] = {N, L, DPT_N_SHAPE};
    PyObject *exp = new_f32(3, de, r->exp), *pose = new_f32(3, dp, r->pose), *shape = new_f32(3, ds, NULL);
    if (!exp || !pose || !shape) {
        Py_XDECREF(exp);
        Py_XDECREF(pose);
        Py_XDECREF(shape);
        return NULL;
    }
    float *sd = (float *)PyArray_DATA((PyArrayObject *)shape);
    for (int n = 0; n < N; n++)   /* upstream's infer_coeffs repeats the shape for every sample */
        memcpy(sd + (size_t)n * L * DPT_N_SHAPE, r->shape, sizeof(float) * (size_t)L * DPT_N_SHAPE);
    return Py_BuildValue("{s:N,s:N,s:N,s:n}", "exp", exp, "pose", pose, "shape", shape, "draws_used", draws_used);
}

/* _generate(samples, features, n_samples, shape, style, params, noise, progress)
 * samples: (n,) float32 or None; features: (frames, feature_dim) float32 or None (then n_samples
 * gives the clip's length); shape (100,); style (d_style,) or None; params dict; noise float32
 * array (any shape, C order) or None; progress callable or None. */
static PyObject *Model_generate(ModelObject *self, PyObject *args) {
    PyObject *samples_o, *feats_o, *shape_o, *style_o, *params_o, *noise_o, *progress_o;
    Py_ssize_t n_samples_arg;
    if (!PyArg_ParseTuple(args, "OOnOOOOO", &samples_o, &feats_o, &n_samples_arg, &shape_o, &style_o, &params_o,
                          &noise_o, &progress_o))
        return NULL;
    if (!model_ready(self)) return NULL;
    PyArrayObject *samples = NULL, *feats = NULL, *style = NULL, *noise = NULL;
    npy_intp any1[1] = {-1}, d100[1] = {DPT_N_SHAPE}, dstyle[1] = {self->info.d_style},
             dfeat[2] = {-1, self->info.feature_dim};
    if (samples_o != Py_None && !(samples = want_array(samples_o, "audio", NPY_FLOAT32, 1, any1))) return NULL;
    if (feats_o != Py_None && !(feats = want_array(feats_o, "features", NPY_FLOAT32, 2, dfeat))) return NULL;
    if (!samples && !feats) {
        PyErr_SetString(PyExc_TypeError, "_generate: samples or features");
        return NULL;
    }
    PyArrayObject *shape = want_array(shape_o, "shape", NPY_FLOAT32, 1, d100);
    if (!shape) return NULL;
    if (style_o != Py_None && !(style = want_array(style_o, "style", NPY_FLOAT32, 1, dstyle))) return NULL;
    if (noise_o != Py_None) {
        if (!PyArray_Check(noise_o) || PyArray_TYPE((PyArrayObject *)noise_o) != NPY_FLOAT32 ||
            !PyArray_ISCARRAY_RO((PyArrayObject *)noise_o)) {
            PyErr_SetString(PyExc_TypeError, "noise: expected a C-contiguous float32 array");
            return NULL;
        }
        noise = (PyArrayObject *)noise_o;
    }
    if (progress_o != Py_None && !PyCallable_Check(progress_o)) {
        PyErr_SetString(PyExc_TypeError, "progress: expected a callable(window, n_windows, step, n_steps)");
        return NULL;
    }
    dpt_gen_params p;
    if (gen_params_from(params_o, &p)) return NULL;
    int threads_given = PyDict_Check(params_o) && PyDict_GetItemString(params_o, "n_threads") != NULL;
    if (!threads_given) p.n_threads = self->n_threads;
    replay rp = {0};
    if (noise) {
        rp.data = f32(noise);
        rp.n = (size_t)PyArray_SIZE(noise);
        p.noise_fn = replay_fn;
        p.noise_user = &rp;
    }
    progress_ctx pc = {progress_o == Py_None ? NULL : progress_o, NULL, NULL, NULL};
    p.progress_fn = progress_cb;
    p.progress_user = &pc;

    dpt_result *res = NULL;
    dpt_error err = {0};
    dpt_status st = DPT_OK;
    const float *sty = style ? f32(style) : NULL;
    Py_BEGIN_ALLOW_THREADS
    /* a per-call thread count other than the model's runs on its own threads */
    dpt_state *s = threads_given ? NULL : state_acquire(self, &err, &st);
    if (st == DPT_OK) {
        if (feats) {
            size_t ns = (size_t)n_samples_arg;
            int nf = (int)PyArray_DIM(feats, 0);
            st = s ? dpt_state_generate_from_features(s, f32(feats), nf, ns, f32(shape), sty, &p, &res, &err)
                   : dpt_model_generate_from_features(self->model, f32(feats), nf, ns, f32(shape), sty, &p, &res, &err);
        } else {
            size_t ns = (size_t)PyArray_DIM(samples, 0);
            st = s ? dpt_state_generate(s, f32(samples), ns, f32(shape), sty, &p, &res, &err)
                   : dpt_model_generate(self->model, f32(samples), ns, f32(shape), sty, &p, &res, &err);
        }
    }
    state_release(self, s);
    Py_END_ALLOW_THREADS
    if (st != DPT_OK) {
        if (progress_restore(&pc)) return NULL;   /* KeyboardInterrupt, or the callback's error */
        return raise_err(&err, st);
    }
    progress_restore(&pc);   /* cannot happen after success; keeps nothing pending */
    PyErr_Clear();
    PyObject *out = result_dict(res, (Py_ssize_t)rp.pos);
    dpt_result_free(res);
    return out;
}

/* _encode_audio(samples, windows, threads) → (frames, feature_dim); threads < 0: the model's */
static PyObject *Model_encode_audio(ModelObject *self, PyObject *args) {
    PyObject *samples_o;
    int windows, threads;
    if (!PyArg_ParseTuple(args, "Opi", &samples_o, &windows, &threads)) return NULL;
    if (!model_ready(self)) return NULL;
    npy_intp any1[1] = {-1};
    PyArrayObject *samples = want_array(samples_o, "audio", NPY_FLOAT32, 1, any1);
    if (!samples) return NULL;
    float *feats = NULL;
    int nf = 0;
    dpt_error err = {0};
    dpt_status st = DPT_OK;
    size_t ns = (size_t)PyArray_DIM(samples, 0);
    Py_BEGIN_ALLOW_THREADS
    dpt_state *s = (threads >= 0 || windows) ? NULL : state_acquire(self, &err, &st);
    int nt = threads >= 0 ? threads : self->n_threads;
    if (st == DPT_OK) {
        if (windows) st = dpt_model_encode_audio_windows(self->model, f32(samples), ns, nt, &feats, &nf, &err);
        else if (s) st = dpt_state_encode_audio(s, f32(samples), ns, &feats, &nf, &err);
        else st = dpt_model_encode_audio(self->model, f32(samples), ns, nt, &feats, &nf, &err);
    }
    state_release(self, s);
    Py_END_ALLOW_THREADS
    if (st != DPT_OK) return raise_err(&err, st);
    npy_intp dims[2] = {nf, self->info.feature_dim};
    return adopt_f32(feats, 2, dims);
}

/* _extract_style(exp (F, 50), pose (F, 6), start) → (d_style,) */
static PyObject *Model_extract_style(ModelObject *self, PyObject *args) {
    PyObject *exp_o, *pose_o;
    int start;
    if (!PyArg_ParseTuple(args, "OOi", &exp_o, &pose_o, &start)) return NULL;
    if (!model_ready(self)) return NULL;
    npy_intp de[2] = {-1, DPT_N_EXP};
    PyArrayObject *exp = want_array(exp_o, "exp", NPY_FLOAT32, 2, de);
    if (!exp) return NULL;
    npy_intp dp[2] = {PyArray_DIM(exp, 0), DPT_N_POSE};
    PyArrayObject *pose = want_array(pose_o, "pose", NPY_FLOAT32, 2, dp);
    if (!pose) return NULL;
    if (PyArray_DIM(exp, 0) > 2147483647) {
        invalid("exp: too many frames");
        return NULL;
    }
    npy_intp ds[1] = {self->info.d_style > 0 ? self->info.d_style : 0};
    PyObject *out = new_f32(1, ds, NULL);
    if (!out) return NULL;
    dpt_error err = {0};
    dpt_status st;
    int nf = (int)PyArray_DIM(exp, 0);
    float *dst = (float *)PyArray_DATA((PyArrayObject *)out);
    Py_BEGIN_ALLOW_THREADS
    st = dpt_model_extract_style(self->model, f32(exp), f32(pose), nf, start, dst, &err);
    Py_END_ALLOW_THREADS
    if (st != DPT_OK) {
        Py_DECREF(out);
        return raise_err(&err, st);
    }
    return out;
}

static PyMethodDef Model_methods[] = {
    {"_generate", (PyCFunction)Model_generate, METH_VARARGS, "internal: see dpt.Model.generate"},
    {"_encode_audio", (PyCFunction)Model_encode_audio, METH_VARARGS, "internal: see dpt.Model.encode_audio"},
    {"_extract_style", (PyCFunction)Model_extract_style, METH_VARARGS, "internal: see dpt.Model.extract_style"},
    {"_tensor", (PyCFunction)Model_tensor, METH_VARARGS, "internal: see dpt.Model.tensor"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Model_getset[] = {
    {"_info", (getter)Model_info, NULL, "hyperparameters (dict)", NULL},
    {"_meta", (getter)Model_meta, NULL, "file metadata (dict)", NULL},
    {"_threads", (getter)Model_threads, NULL, "thread count given at load", NULL},
    {"_tensors", (getter)Model_tensors, NULL, "tensor directory (list of dicts)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dpt._dpt._Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A loaded .dpt model (internal base of dpt.Model).",
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
    .tp_init = (initproc)Model_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------------------------------ */
/* Stream                                                                                       */

typedef struct {
    PyObject_HEAD
    PyObject *model;             /* the ModelObject (kept alive: the stream borrows its model) */
    dpt_state *state;
    dpt_stream *stream;
    progress_ctx pc;             /* the gen params copied into the stream point here */
    PyObject *noise;             /* replayed draws (float32 array) or NULL */
    replay rp;                   /* ... read through this, rewound by reset */
    PyThread_type_lock lock;
    int n_motions;
} StreamObject;

static PyTypeObject StreamType;

/* GC: a progress callback that refers back to its stream makes a cycle; clearing breaks it at the
 * callback (the model reference stays until dealloc: the C stream uses the model's weights). */
static int Stream_traverse(StreamObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->pc.callback);
    Py_VISIT(self->noise);
    Py_VISIT(self->model);
    return 0;
}

static int Stream_clear(StreamObject *self) {
    Py_CLEAR(self->pc.callback);
    return 0;
}

static void Stream_dealloc(StreamObject *self) {
    PyObject_GC_UnTrack(self);
    dpt_stream_free(self->stream);
    dpt_state_free(self->state);
    if (self->lock) PyThread_free_lock(self->lock);
    Py_XDECREF(self->pc.callback);
    Py_XDECREF(self->noise);
    Py_XDECREF(self->pc.et);
    Py_XDECREF(self->pc.ev);
    Py_XDECREF(self->pc.tb);
    Py_XDECREF(self->model);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* _Stream(model, shape, style, params, threads, norm, norm_mean, norm_std, progress, chunk_frames,
 *         context_frames, noise) */
static int Stream_init(StreamObject *self, PyObject *args, PyObject *kw) {
    (void)kw;
    PyObject *model_o, *shape_o, *style_o, *params_o, *progress_o, *noise_o;
    int threads, norm, chunk, context;
    double mean, sd;
    if (!PyArg_ParseTuple(args, "O!OOOiiddOiiO", &ModelType, &model_o, &shape_o, &style_o, &params_o, &threads,
                          &norm, &mean, &sd, &progress_o, &chunk, &context, &noise_o))
        return -1;
    if (self->stream) {
        PyErr_SetString(PyExc_RuntimeError, "Stream already initialised");
        return -1;
    }
    ModelObject *m = (ModelObject *)model_o;
    if (!model_ready(m)) return -1;
    npy_intp d100[1] = {DPT_N_SHAPE}, dstyle[1] = {m->info.d_style};
    PyArrayObject *shape = want_array(shape_o, "shape", NPY_FLOAT32, 1, d100), *style = NULL;
    if (!shape) return -1;
    if (style_o != Py_None && !(style = want_array(style_o, "style", NPY_FLOAT32, 1, dstyle))) return -1;
    if (progress_o != Py_None && !PyCallable_Check(progress_o)) {
        PyErr_SetString(PyExc_TypeError, "progress: expected a callable(window, n_windows, step, n_steps)");
        return -1;
    }
    npy_intp any1[1] = {-1};
    PyArrayObject *noise = NULL;
    if (noise_o != Py_None && !(noise = want_array(noise_o, "noise", NPY_FLOAT32, 1, any1))) return -1;
    dpt_gen_params p;
    if (gen_params_from(params_o, &p)) return -1;
    if (noise) {
        self->noise = Py_NewRef(noise_o);
        self->rp.data = f32(noise);
        self->rp.n = (size_t)PyArray_SIZE(noise);
        p.noise_fn = replay_fn;
        p.noise_user = &self->rp;
    }
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        PyErr_NoMemory();
        return -1;
    }
    self->model = Py_NewRef(model_o);
    self->pc.callback = progress_o == Py_None ? NULL : Py_NewRef(progress_o);
    p.progress_fn = progress_cb;
    p.progress_user = &self->pc;
    dpt_stream_params sp = dpt_stream_params_default();
    sp.norm = norm;
    sp.norm_mean = (float)mean;
    sp.norm_std = (float)sd;
    sp.chunk_frames = chunk;
    sp.context_frames = context;
    self->n_motions = m->info.n_motions;
    dpt_error err = {0};
    dpt_status st;
    const float *sty = style ? f32(style) : NULL;
    Py_BEGIN_ALLOW_THREADS
    st = dpt_state_new(m->model, threads, &self->state, &err);
    if (st == DPT_OK) st = dpt_stream_open(self->state, f32(shape), sty, &p, &sp, &self->stream, &err);
    Py_END_ALLOW_THREADS
    if (st != DPT_OK) {
        raise_err(&err, st);
        return -1;
    }
    return 0;
}

static int stream_enter(StreamObject *self) {
    if (!self->stream) {
        PyErr_SetString(PyExc_RuntimeError, "Stream not initialised");
        return 0;
    }
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        raise_status(DPT_ERR_INVALID_ARG, "stream: in use by another thread (a stream serves one thread at a time)");
        return 0;
    }
    return 1;
}

static PyObject *Stream_push(StreamObject *self, PyObject *args) {
    PyObject *obj;
    if (!PyArg_ParseTuple(args, "O", &obj)) return NULL;
    npy_intp any1[1] = {-1};
    PyArrayObject *a = want_array(obj, "samples", NPY_FLOAT32, 1, any1);
    if (!a || !stream_enter(self)) return NULL;
    dpt_error err = {0};
    dpt_status st = dpt_stream_push(self->stream, f32(a), (size_t)PyArray_DIM(a, 0), &err);   /* copies only */
    PyThread_release_lock(self->lock);
    if (st != DPT_OK) return raise_err(&err, st);
    Py_RETURN_NONE;
}

static PyObject *Stream_flush(StreamObject *self, PyObject *args) {
    (void)args;
    if (!stream_enter(self)) return NULL;
    dpt_error err = {0};
    dpt_status st = dpt_stream_flush(self->stream, &err);
    PyThread_release_lock(self->lock);
    if (st != DPT_OK) return raise_err(&err, st);
    Py_RETURN_NONE;
}

static PyObject *Stream_reset(StreamObject *self, PyObject *args) {
    (void)args;
    if (!stream_enter(self)) return NULL;
    dpt_stream_reset(self->stream);
    self->rp.pos = 0;   /* replayed draws start over, as the built-in generator is re-seeded */
    PyThread_release_lock(self->lock);
    Py_RETURN_NONE;
}

/* _pull(max_frames) → (exp (k, 50), pose (k, 6)); max_frames < 0: every ready frame, or one
 * window's when none is ready */
static PyObject *Stream_pull(StreamObject *self, PyObject *args) {
    int max_frames;
    if (!PyArg_ParseTuple(args, "i", &max_frames)) return NULL;
    if (!stream_enter(self)) return NULL;
    dpt_stream_info si;
    dpt_stream_get_info(self->stream, &si);
    int cap = max_frames >= 0 ? max_frames : (si.frames_ready > self->n_motions ? si.frames_ready : self->n_motions);
    npy_intp de[2] = {cap, DPT_N_EXP}, dp[2] = {cap, DPT_N_POSE};
    PyObject *exp = new_f32(2, de, NULL), *pose = new_f32(2, dp, NULL);
    if (!exp || !pose) {
        Py_XDECREF(exp);
        Py_XDECREF(pose);
        PyThread_release_lock(self->lock);
        return NULL;
    }
    float *e = (float *)PyArray_DATA((PyArrayObject *)exp), *po = (float *)PyArray_DATA((PyArrayObject *)pose);
    int got = 0;
    dpt_error err = {0};
    dpt_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dpt_stream_pull(self->stream, e, po, cap, &got, &err);
    Py_END_ALLOW_THREADS
    PyThread_release_lock(self->lock);
    if (st != DPT_OK) {
        Py_DECREF(exp);
        Py_DECREF(pose);
        if (progress_restore(&self->pc)) return NULL;
        return raise_err(&err, st);
    }
    return Py_BuildValue("(NNi)", exp, pose, got);
}

static PyObject *Stream_info(StreamObject *self, void *closure) {
    (void)closure;
    if (!self->stream) {
        PyErr_SetString(PyExc_RuntimeError, "Stream not initialised");
        return NULL;
    }
    dpt_stream_info si;
    dpt_stream_get_info(self->stream, &si);
    return Py_BuildValue("{s:n,s:l,s:i,s:i,s:O,s:O,s:i,s:i,s:n}", "samples_pushed", (Py_ssize_t)si.samples_pushed,
                         "frames_pulled", si.frames_pulled, "frames_ready", si.frames_ready,
                         "windows_due", si.windows_due, "flushed", si.flushed ? Py_True : Py_False,
                         "finished", si.finished ? Py_True : Py_False, "chunk_frames", si.chunk_frames,
                         "context_frames", si.context_frames, "draws_used", (Py_ssize_t)self->rp.pos);
}

static PyObject *Stream_threads(StreamObject *self, void *closure) {
    (void)closure;
    return PyLong_FromLong(self->state ? dpt_state_threads(self->state) : 0);
}

static PyMethodDef Stream_methods[] = {
    {"_push", (PyCFunction)Stream_push, METH_VARARGS, "internal: see dpt.Stream.push"},
    {"_flush", (PyCFunction)Stream_flush, METH_NOARGS, "internal: see dpt.Stream.flush"},
    {"_reset", (PyCFunction)Stream_reset, METH_NOARGS, "internal: see dpt.Stream.reset"},
    {"_pull", (PyCFunction)Stream_pull, METH_VARARGS, "internal: see dpt.Stream.pull"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Stream_getset[] = {
    {"_info", (getter)Stream_info, NULL, "stream counters (dict)", NULL},
    {"_threads", (getter)Stream_threads, NULL, "the stream's thread count", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject StreamType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dpt._dpt._Stream",
    .tp_basicsize = sizeof(StreamObject),
    .tp_dealloc = (destructor)Stream_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Stream_traverse,
    .tp_clear = (inquiry)Stream_clear,
    .tp_doc = "A stream on its own state (internal base of dpt.Stream).",
    .tp_methods = Stream_methods,
    .tp_getset = Stream_getset,
    .tp_init = (initproc)Stream_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------------------------------ */
/* Flame                                                                                        */

typedef struct {
    PyObject_HEAD
    dpt_flame *flame;
    dpt_flame_info info;
    int n_threads;
} FlameObject;

static PyTypeObject FlameType;

static void Flame_dealloc(FlameObject *self) {
    dpt_flame_free(self->flame);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Flame_init(FlameObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "threads", NULL};
    PyObject *path_obj;
    int threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|i", kwlist, PyUnicode_FSConverter, &path_obj, &threads))
        return -1;
    if (self->flame || threads < 0) {
        Py_DECREF(path_obj);
        if (threads < 0) invalid("threads: %d is negative (0 = all cores)", threads);
        else PyErr_SetString(PyExc_RuntimeError, "Flame already initialised");
        return -1;
    }
    dpt_error err = {0};
    dpt_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dpt_flame_load(PyBytes_AS_STRING(path_obj), &self->flame, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (st != DPT_OK) {
        raise_err(&err, st);
        return -1;
    }
    dpt_flame_get_info(self->flame, &self->info);
    self->n_threads = threads;
    return 0;
}

static int flame_ready(FlameObject *self) {
    if (!self->flame) PyErr_SetString(PyExc_RuntimeError, "Flame not initialised");
    return self->flame != NULL;
}

static PyObject *Flame_info(FlameObject *self, void *closure) {
    (void)closure;
    if (!flame_ready(self)) return NULL;
    const dpt_flame_info *i = &self->info;
    return Py_BuildValue("{s:N,s:i,s:i,s:i,s:i,s:i,s:O,s:i,s:s}", "path",
                         PyUnicode_DecodeFSDefault(i->path ? i->path : ""), "n_vertices", i->n_vertices,
                         "n_faces", i->n_faces, "n_joints", i->n_joints, "n_shape", i->n_shape, "n_exp", i->n_exp,
                         "has_uv", i->has_uv ? Py_True : Py_False, "n_uv", i->n_uv, "source",
                         i->source ? i->source : "");
}

static PyObject *Flame_faces(FlameObject *self, void *closure) {
    (void)closure;
    if (!flame_ready(self)) return NULL;
    npy_intp d[2] = {self->info.n_faces, 3};
    PyObject *a = PyArray_SimpleNew(2, d, NPY_INT32);
    if (a) memcpy(PyArray_DATA((PyArrayObject *)a), dpt_flame_faces(self->flame), sizeof(int32_t) * (size_t)d[0] * 3);
    return a;
}

static PyObject *Flame_uv(FlameObject *self, void *closure) {
    (void)closure;
    if (!flame_ready(self)) return NULL;
    const float *vt;
    const int32_t *ft;
    dpt_flame_uv(self->flame, &vt, &ft);
    if (!vt || !ft) Py_RETURN_NONE;
    npy_intp dv[2] = {self->info.n_uv, 2}, df[2] = {self->info.n_faces, 3};
    PyObject *a = new_f32(2, dv, vt), *b = PyArray_SimpleNew(2, df, NPY_INT32);
    if (!a || !b) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return NULL;
    }
    memcpy(PyArray_DATA((PyArrayObject *)b), ft, sizeof(int32_t) * (size_t)df[0] * 3);
    return Py_BuildValue("(NN)", a, b);
}

/* _vertices(shape (100,) or (F, 100), exp (F, 50), pose (F, 6), no_head, threads) → (F, V, 3) */
static PyObject *Flame_vertices(FlameObject *self, PyObject *args) {
    PyObject *shape_o, *exp_o, *pose_o;
    int no_head, threads;
    if (!PyArg_ParseTuple(args, "OOOpi", &shape_o, &exp_o, &pose_o, &no_head, &threads)) return NULL;
    if (!flame_ready(self)) return NULL;
    npy_intp de[2] = {-1, DPT_N_EXP};
    PyArrayObject *exp = want_array(exp_o, "exp", NPY_FLOAT32, 2, de);
    if (!exp) return NULL;
    npy_intp F = PyArray_DIM(exp, 0);
    npy_intp dp[2] = {F, DPT_N_POSE}, ds1[1] = {DPT_N_SHAPE}, ds2[2] = {F, DPT_N_SHAPE};
    PyArrayObject *pose = want_array(pose_o, "pose", NPY_FLOAT32, 2, dp);
    if (!pose) return NULL;
    int per_frame = PyArray_Check(shape_o) && PyArray_NDIM((PyArrayObject *)shape_o) == 2;
    PyArrayObject *shape = per_frame ? want_array(shape_o, "shape", NPY_FLOAT32, 2, ds2)
                                     : want_array(shape_o, "shape", NPY_FLOAT32, 1, ds1);
    if (!shape) return NULL;
    if (F < 1 || F > 2147483647) {
        invalid("exp: %zd frames (1 or more)", (Py_ssize_t)F);
        return NULL;
    }
    npy_intp dv[3] = {F, self->info.n_vertices, 3};
    PyObject *out = new_f32(3, dv, NULL);
    if (!out) return NULL;
    dpt_flame_params fp = dpt_flame_params_default();
    fp.no_head = no_head;
    fp.n_threads = threads >= 0 ? threads : self->n_threads;
    dpt_error err = {0};
    dpt_status st;
    float *v = (float *)PyArray_DATA((PyArrayObject *)out);
    Py_BEGIN_ALLOW_THREADS
    st = dpt_flame_vertices(self->flame, (int)F, f32(shape), per_frame, f32(exp), f32(pose), &fp, v, &err);
    Py_END_ALLOW_THREADS
    if (st != DPT_OK) {
        Py_DECREF(out);
        return raise_err(&err, st);
    }
    return out;
}

static PyMethodDef Flame_methods[] = {
    {"_vertices", (PyCFunction)Flame_vertices, METH_VARARGS, "internal: see dpt.Flame.vertices"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Flame_getset[] = {
    {"_info", (getter)Flame_info, NULL, "counts and source (dict)", NULL},
    {"_faces", (getter)Flame_faces, NULL, "(n_faces, 3) int32", NULL},
    {"_uv", (getter)Flame_uv, NULL, "(vt, ft) or None", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FlameType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dpt._dpt._Flame",
    .tp_basicsize = sizeof(FlameObject),
    .tp_dealloc = (destructor)Flame_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A loaded FLAME file (internal base of dpt.Flame).",
    .tp_methods = Flame_methods,
    .tp_getset = Flame_getset,
    .tp_init = (initproc)Flame_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------------------------------ */
/* Renderer                                                                                     */

typedef struct {
    PyObject_HEAD
    dpt_renderer *r;
    PyObject *texture;          /* the uint8 array the renderer borrows */
    dpt_image tex;
    int width, height, n_vertices;
    PyThread_type_lock lock;    /* one frame at a time: a renderer is per caller */
} RendererObject;

static PyTypeObject RendererType;

static void Renderer_dealloc(RendererObject *self) {
    dpt_renderer_free(self->r);
    Py_XDECREF(self->texture);
    if (self->lock) PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* _Renderer(faces (F, 3) int32, n_vertices, width, height, supersample, black_bg, threads,
 *           texture (H, W, 3) uint8 or None, vt (n, 2) float32 or None, ft (F, 3) int32 or None) */
static int Renderer_init(RendererObject *self, PyObject *args, PyObject *kw) {
    (void)kw;
    PyObject *faces_o, *tex_o, *vt_o, *ft_o;
    int nv, w, h, ss, black, threads;
    if (!PyArg_ParseTuple(args, "OiiiipiOOO", &faces_o, &nv, &w, &h, &ss, &black, &threads, &tex_o, &vt_o, &ft_o))
        return -1;
    if (self->r) {
        PyErr_SetString(PyExc_RuntimeError, "Renderer already initialised");
        return -1;
    }
    npy_intp df[2] = {-1, 3}, dvt[2] = {-1, 2}, dtex[3] = {-1, -1, 3};
    PyArrayObject *faces = want_array(faces_o, "faces", NPY_INT32, 2, df), *vt = NULL, *ft = NULL, *tex = NULL;
    if (!faces) return -1;
    if (vt_o != Py_None && !(vt = want_array(vt_o, "vt", NPY_FLOAT32, 2, dvt))) return -1;
    npy_intp dft[2] = {PyArray_DIM(faces, 0), 3};
    if (ft_o != Py_None && !(ft = want_array(ft_o, "ft", NPY_INT32, 2, dft))) return -1;
    if (tex_o != Py_None && !(tex = want_array(tex_o, "texture", NPY_UINT8, 3, dtex))) return -1;
    if (PyArray_DIM(faces, 0) > 2147483647 || (vt && PyArray_DIM(vt, 0) > 2147483647)) {
        invalid("faces: too many");
        return -1;
    }
    dpt_render_params rp = dpt_render_params_default();
    rp.width = w;
    rp.height = h;
    rp.supersample = ss;
    rp.black_bg = black;
    rp.n_threads = threads;
    if (tex) {
        self->texture = Py_NewRef(tex_o);
        self->tex.width = (int)PyArray_DIM(tex, 1);
        self->tex.height = (int)PyArray_DIM(tex, 0);
        self->tex.rgb = (uint8_t *)PyArray_DATA(tex);
        rp.texture = &self->tex;
    }
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        PyErr_NoMemory();
        return -1;
    }
    dpt_error err = {0};
    dpt_status st = dpt_renderer_new(&rp, nv, (const int32_t *)PyArray_DATA(faces), (int)PyArray_DIM(faces, 0),
                                     vt ? f32(vt) : NULL, vt ? (int)PyArray_DIM(vt, 0) : 0,
                                     ft ? (const int32_t *)PyArray_DATA(ft) : NULL, &self->r, &err);
    if (st != DPT_OK) {
        raise_err(&err, st);
        return -1;
    }
    self->width = w;
    self->height = h;
    self->n_vertices = nv;
    return 0;
}

/* _render(vertices (V, 3)) → (H, W, 3) uint8 */
static PyObject *Renderer_render(RendererObject *self, PyObject *args) {
    PyObject *v_o;
    if (!PyArg_ParseTuple(args, "O", &v_o)) return NULL;
    if (!self->r) {
        PyErr_SetString(PyExc_RuntimeError, "Renderer not initialised");
        return NULL;
    }
    npy_intp dv[2] = {self->n_vertices, 3};
    PyArrayObject *v = want_array(v_o, "vertices", NPY_FLOAT32, 2, dv);
    if (!v) return NULL;
    npy_intp d[3] = {self->height, self->width, 3};
    PyObject *out = PyArray_SimpleNew(3, d, NPY_UINT8);
    if (!out) return NULL;
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        Py_DECREF(out);
        return raise_status(DPT_ERR_INVALID_ARG, "renderer: in use by another thread (make one renderer per thread)");
    }
    uint8_t *rgb = (uint8_t *)PyArray_DATA((PyArrayObject *)out);
    dpt_error err = {0};
    dpt_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dpt_renderer_draw(self->r, f32(v), rgb, &err);
    Py_END_ALLOW_THREADS
    PyThread_release_lock(self->lock);
    if (st != DPT_OK) {
        Py_DECREF(out);
        return raise_err(&err, st);
    }
    return out;
}

static PyMethodDef Renderer_methods[] = {
    {"_render", (PyCFunction)Renderer_render, METH_VARARGS, "internal: see dpt.Renderer.render"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RendererType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dpt._dpt._Renderer",
    .tp_basicsize = sizeof(RendererObject),
    .tp_dealloc = (destructor)Renderer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A software renderer for one mesh topology (internal base of dpt.Renderer).",
    .tp_methods = Renderer_methods,
    .tp_init = (initproc)Renderer_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------------------------------ */
/* module                                                                                       */

static PyMethodDef module_methods[] = {
    {"version", py_version, METH_NOARGS, "version() -> str: the linked library's dpt_version()"},
    {"gen_defaults", py_gen_defaults, METH_NOARGS, "gen_defaults() -> dict: dpt_gen_params_default()"},
    {"audio_load", py_audio_load, METH_VARARGS, "audio_load(path) -> float32 (n,): dpt_audio_load"},
    {"audio_to_16k", py_audio_to_16k, METH_VARARGS, "audio_to_16k(samples (n, ch) float32, rate) -> (m,)"},
    {"audio_stats", py_audio_stats, METH_VARARGS, "audio_stats(samples) -> (mean, std)"},
    {"image_read", py_image_read, METH_VARARGS, "image_read(path) -> (H, W, 3) uint8"},
    {"_register_errors", py_register_errors, METH_VARARGS, "internal"},
    {"_register_warning", py_register_warning, METH_VARARGS, "internal"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_dpt", "libdpt bindings (internal; use the dpt package)", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__dpt(void) {
    import_array();
    PyTypeObject *types[] = {&ModelType, &StreamType, &FlameType, &RendererType};
    const char *names[] = {"_Model", "_Stream", "_Flame", "_Renderer"};
    for (int i = 0; i < 4; i++)
        if (PyType_Ready(types[i]) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    for (int i = 0; i < 4; i++)
        if (PyModule_AddObjectRef(m, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    if (PyModule_AddIntConstant(m, "N_EXP", DPT_N_EXP) || PyModule_AddIntConstant(m, "N_POSE", DPT_N_POSE) ||
        PyModule_AddIntConstant(m, "N_SHAPE", DPT_N_SHAPE) ||
        PyModule_AddIntConstant(m, "SAMPLE_RATE", DPT_SAMPLE_RATE) ||
        PyModule_AddIntConstant(m, "COND_AUDIO", DPT_COND_AUDIO) ||
        PyModule_AddIntConstant(m, "COND_STYLE", DPT_COND_STYLE) ||
        PyModule_AddIntConstant(m, "CFG_INCREMENTAL", DPT_CFG_INCREMENTAL) ||
        PyModule_AddIntConstant(m, "CFG_INDEPENDENT", DPT_CFG_INDEPENDENT) ||
        PyModule_AddIntConstant(m, "NORM_FIXED", DPT_NORM_FIXED) ||
        PyModule_AddIntConstant(m, "NORM_RUNNING", DPT_NORM_RUNNING) ||
        PyModule_AddStringConstant(m, "HEADER_VERSION", DPT_VERSION_STRING)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
