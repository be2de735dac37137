/* raceway_sdk._speedups: the recorder's hot paths in C (accesses, sync events).
 *
 * hook_access() here does what raceway_sdk._recorder.hook_access + _access_slow do for the
 * common cases, with the same results (the same events, payload sharing, dedupe table and
 * held-back accesses; tests run the recorder suites both ways):
 *
 *   - a repeated access in the same epoch: dropped (the dedupe table, state.seen);
 *   - an access of a shared object by a thread task, with a batching sink, a named location
 *     and a stack already captured for this site and caller: one StateChange event appended
 *     to the outbox;
 *   - an access of an object only this task has touched (defer_private): held back in the
 *     entry's flat pend list.
 *
 * Everything else (first sight of an object, a new location or stack, event-loop tasks,
 * named sites, keys that need normalising, a busy or quiet thread, a non-batching sink)
 * goes to the Python _access_slow, which stays the reference. No Python code runs between
 * the reads and the writes of the fast paths, so they are atomic under the GIL; a build
 * without the GIL does not use this module (see _recorder).
 *
 * Object layouts are not hard-coded: slot offsets come from the member descriptors of the
 * Python classes at bind() time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <structmember.h>
#include <time.h>

#if PY_VERSION_HEX < 0x030B0000
#define GET_LASTI(f) ((f)->f_lasti < 0 ? -1 : (f)->f_lasti * 2)
#else
#define GET_LASTI(f) PyFrame_GetLasti(f)
#endif

#define SLOT(o, off) (*(PyObject **)((char *)(o) + (off)))

/* bound state (bind()) */
static PyObject *G;  /* raceway_sdk._recorder.__dict__ */
static PyObject *EV; /* raceway_sdk.protocol.events.__dict__ */
static PyObject *STK; /* raceway_sdk._stacks.__dict__ */
static PyObject *current, *table, *busy, *novalue, *event_type, *no_locks, *outbox, *item_kind,
    *all_key, *box;
static PyTypeObject *entry_type, *state_type, *site_type, *clockslot_type;
static Py_ssize_t E_serial, E_ref, E_strong, E_skip, E_owner, E_pend, E_locs, E_sync_vc, E_sync_data,
    E_label;
static Py_ssize_t T_seen, T_quiet, T_loop, T_vc, T_stacks, T_datas, T_meta, T_meta_gen, T_id,
    T_sync_ext;
static Py_ssize_t C_sync_vc;
static Py_ssize_t S_kind, S_name, S_func, S_location;
static Py_ssize_t pend_fields, pend_max;
static int bound = 0;

/* interned names */
static PyObject *n_sink, *n_batched, *n_defer, *n_trace, *n_meta_gen, *n_drain_at, *n_emitted,
    *n_slow, *n_lazy, *n_meta, *n_error, *n_id_base, *n_counter, *n_id_mask, *n_wake,
    *n_py_acquire, *n_py_release, *n_sync_lock, *n_locked, *n_synced, *n_locations, *n_skip,
    *n_locations_max, *n_startswith;
static PyObject *k_loc, *k_func, *k_stack, *k_task, *k_trusted, *k_variable, *k_old, *k_new,
    *k_location, *k_access_type, *s_statechange, *k_lock_id, *k_lock_type, *s_lock_acquire,
    *s_lock_release, *s_unknown_location;

static int
member_offset(PyTypeObject *tp, const char *name, Py_ssize_t *out)
{
    PyObject *d = PyObject_GetAttrString((PyObject *)tp, name);
    if (d == NULL)
        return -1;
    if (Py_TYPE(d) != &PyMemberDescr_Type) {
        Py_DECREF(d);
        PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", tp->tp_name, name);
        return -1;
    }
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    if (m->type != T_OBJECT_EX && m->type != T_OBJECT) {
        Py_DECREF(d);
        PyErr_Format(PyExc_TypeError, "%s.%s is not an object slot", tp->tp_name, name);
        return -1;
    }
    *out = m->offset;
    Py_DECREF(d);
    return 0;
}

static PyObject *
get_global(PyObject *dict, PyObject *name)
{
    PyObject *v = PyDict_GetItemWithError(dict, name); /* borrowed */
    if (v == NULL && !PyErr_Occurred())
        PyErr_Format(PyExc_RuntimeError, "raceway _speedups: %U is missing", name);
    return v;
}

#define INTERN(var, text)                                  \
    do {                                                   \
        if ((var = PyUnicode_InternFromString(text)) == NULL) \
            return NULL;                                   \
    } while (0)

#define KEEP(var, dict, text)                              \
    do {                                                   \
        PyObject *_n = PyUnicode_FromString(text);         \
        if (_n == NULL)                                    \
            return NULL;                                   \
        var = get_global(dict, _n);                        \
        Py_DECREF(_n);                                     \
        if (var == NULL)                                   \
            return NULL;                                   \
        Py_INCREF(var);                                    \
    } while (0)

static PyObject *
bind(PyObject *self, PyObject *args)
{
    PyObject *g, *ev, *stk;
    PyTypeObject *et, *st, *sit, *cst;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!O!", &PyDict_Type, &g, &PyDict_Type, &ev, &PyType_Type,
                          &et, &PyType_Type, &st, &PyType_Type, &sit, &PyDict_Type, &stk,
                          &PyType_Type, &cst))
        return NULL;
    if (bound) {
        PyErr_SetString(PyExc_RuntimeError, "raceway _speedups: already bound");
        return NULL;
    }
    if (member_offset(et, "serial", &E_serial) || member_offset(et, "ref", &E_ref) ||
        member_offset(et, "strong", &E_strong) || member_offset(et, "skip", &E_skip) ||
        member_offset(et, "owner", &E_owner) || member_offset(et, "pend", &E_pend) ||
        member_offset(et, "locs", &E_locs) || member_offset(st, "seen", &T_seen) ||
        member_offset(st, "quiet", &T_quiet) || member_offset(st, "loop", &T_loop) ||
        member_offset(st, "vc", &T_vc) || member_offset(st, "stacks", &T_stacks) ||
        member_offset(st, "datas", &T_datas) || member_offset(st, "meta", &T_meta) ||
        member_offset(st, "meta_gen", &T_meta_gen) || member_offset(st, "id", &T_id) ||
        member_offset(sit, "kind", &S_kind) || member_offset(sit, "name", &S_name) ||
        member_offset(sit, "func", &S_func) || member_offset(sit, "location", &S_location) ||
        member_offset(et, "sync_vc", &E_sync_vc) || member_offset(et, "sync_data", &E_sync_data) ||
        member_offset(et, "label", &E_label) || member_offset(st, "sync_ext", &T_sync_ext) ||
        member_offset(cst, "sync_vc", &C_sync_vc))
        return NULL;
    INTERN(n_sink, "_sink");
    INTERN(n_batched, "_batched");
    INTERN(n_defer, "_defer_private");
    INTERN(n_trace, "_trace_id");
    INTERN(n_meta_gen, "_meta_gen");
    INTERN(n_drain_at, "_DRAIN_AT");
    INTERN(n_emitted, "_emitted");
    INTERN(n_slow, "_access_slow");
    INTERN(n_lazy, "_lazy_state");
    INTERN(n_meta, "_meta");
    INTERN(n_error, "_internal_error");
    INTERN(n_id_base, "_id_base_now");
    INTERN(n_counter, "_counter");
    INTERN(n_id_mask, "_ID_MASK");
    INTERN(n_wake, "wake");
    INTERN(n_py_acquire, "py_acquire");
    INTERN(n_py_release, "py_release");
    INTERN(n_sync_lock, "_sync_lock");
    INTERN(n_locked, "locked");
    INTERN(n_synced, "_synced");
    INTERN(n_locations, "_locations");
    INTERN(n_skip, "_SKIP_FOR_LOCATION");
    INTERN(n_locations_max, "_LOCATIONS_MAX");
    INTERN(n_startswith, "startswith");
    INTERN(k_lock_id, "lock_id");
    INTERN(k_lock_type, "lock_type");
    INTERN(s_lock_acquire, "LockAcquire");
    INTERN(s_lock_release, "LockRelease");
    INTERN(s_unknown_location, "<unknown>:0");
    INTERN(k_loc, "loc");
    INTERN(k_func, "func");
    INTERN(k_stack, "stack");
    INTERN(k_task, "task");
    INTERN(k_trusted, "trusted_vc");
    INTERN(k_variable, "variable");
    INTERN(k_old, "old_value");
    INTERN(k_new, "new_value");
    INTERN(k_location, "location");
    INTERN(k_access_type, "access_type");
    INTERN(s_statechange, "StateChange");
    KEEP(current, g, "CURRENT");
    KEEP(table, g, "_table");
    KEEP(busy, g, "_busy");
    KEEP(novalue, g, "_NOVALUE");
    KEEP(event_type, g, "Event");
    KEEP(no_locks, g, "_NO_LOCKS");
    KEEP(outbox, g, "_outbox");
    KEEP(item_kind, g, "ITEM");
    KEEP(all_key, g, "ALL");
    KEEP(box, g, "_box");
    PyObject *pf, *pm;
    KEEP(pf, g, "_PEND_ITEM");
    KEEP(pm, g, "_PEND_MAX");
    pend_fields = PyLong_AsSsize_t(pf);
    pend_max = PyLong_AsSsize_t(pm);
    Py_DECREF(pf);
    Py_DECREF(pm);
    if (PyErr_Occurred())
        return NULL;
    if (!PyList_CheckExact(outbox) || !PyDict_CheckExact(table) || !PyDict_CheckExact(busy)) {
        PyErr_SetString(PyExc_TypeError, "raceway _speedups: unexpected recorder state types");
        return NULL;
    }
    Py_INCREF(g);
    Py_INCREF(ev);
    Py_INCREF(et);
    Py_INCREF(st);
    Py_INCREF(sit);
    Py_INCREF(stk);
    Py_INCREF(cst);
    G = g;
    EV = ev;
    STK = stk;
    entry_type = et;
    state_type = st;
    site_type = sit;
    clockslot_type = cst;
    bound = 1;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------ helpers */

static PyObject *
time_ns_obj(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLongLong((long long)ts.tv_sec * 1000000000LL + (long long)ts.tv_nsec);
}

/* events.new_event_id(), inlined: _id_base_now | (next(_counter) & _ID_MASK) */
static PyObject *
new_event_id(void)
{
    PyObject *base = get_global(EV, n_id_base);
    PyObject *counter = base ? get_global(EV, n_counter) : NULL;
    PyObject *mask = counter ? get_global(EV, n_id_mask) : NULL;
    if (mask == NULL)
        return NULL;
    Py_INCREF(base); /* the globals may be rebound (fork) while we compute */
    Py_INCREF(counter);
    PyObject *n = PyIter_Next(counter);
    Py_DECREF(counter);
    if (n == NULL) {
        Py_DECREF(base);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "event id counter exhausted");
        return NULL;
    }
    PyObject *low = PyNumber_And(n, mask);
    Py_DECREF(n);
    if (low == NULL) {
        Py_DECREF(base);
        return NULL;
    }
    PyObject *id = PyNumber_Or(base, low);
    Py_DECREF(base);
    Py_DECREF(low);
    return id;
}

/* _recorder._cheap_value: 1 and a new reference in *out when the value is kept, else 0 */
static int
cheap_value(PyObject *value, PyObject **out)
{
    PyTypeObject *t = Py_TYPE(value);
    if (t == &PyUnicode_Type) {
        if (PyUnicode_GET_LENGTH(value) <= 64) {
            Py_INCREF(value);
            *out = value;
            return 1;
        }
        return -2; /* long string: the Python path truncates it */
    }
    if (t == &PyBool_Type || t == &PyFloat_Type || value == Py_None) {
        Py_INCREF(value);
        *out = value;
        return 1;
    }
    if (t == &PyLong_Type) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (overflow > 0) { /* >= 2**63: kept when < 2**64 */
            unsigned long long u = PyLong_AsUnsignedLongLong(value);
            if (u == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear();
                return 0;
            }
        }
        else if (overflow < 0)
            return 0;
        Py_INCREF(value);
        *out = value;
        return 1;
    }
    return 0;
}

/* The stack cached for (state, site) when it was captured from this very site frame and
 * caller instruction (_recorder._site_stack's hit test); borrowed, or NULL (no error). */
static PyObject *
cached_stack(PyObject *state, PyObject *site, long up)
{
    PyObject *stacks = SLOT(state, T_stacks);
    if (stacks == NULL || !PyDict_CheckExact(stacks))
        return NULL;
    PyObject *hit = PyDict_GetItemWithError(stacks, site);
    if (hit == NULL || !PyTuple_CheckExact(hit) || PyTuple_GET_SIZE(hit) != 4) {
        PyErr_Clear();
        return NULL;
    }
    PyFrameObject *f = PyEval_GetFrame(); /* borrowed: the hook's (or access()'s) frame */
    if (f == NULL)
        return NULL;
    Py_INCREF(f);
    for (long i = 0; i < up - 2 && f != NULL; i++) {
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    if (f == NULL)
        return NULL;
    PyObject *result = NULL;
    PyCodeObject *code = PyFrame_GetCode(f);
    if ((PyObject *)code == PyTuple_GET_ITEM(hit, 0)) {
        PyFrameObject *caller = PyFrame_GetBack(f);
        if (caller != NULL) {
            PyCodeObject *ccode = PyFrame_GetCode(caller);
            if ((PyObject *)ccode == PyTuple_GET_ITEM(hit, 1)) {
                long lasti = PyLong_AsLong(PyTuple_GET_ITEM(hit, 2));
                if (lasti == -1 && PyErr_Occurred())
                    PyErr_Clear();
                else if (GET_LASTI(caller) == lasti)
                    result = PyTuple_GET_ITEM(hit, 3);
            }
            Py_DECREF(ccode);
            Py_DECREF(caller);
        }
    }
    Py_DECREF(code);
    Py_DECREF(f);
    return result;
}

static int
is_true_slot(PyObject *v)
{
    return v == Py_True;
}

/* ------------------------------------------------------------------------------ emission */

/* The held-back path: append the access's fields to the entry's pend list. 1 done, 0 not
 * applicable (the Python path decides), -1 error. */
static int
hold_back(PyObject *state, PyObject *ent, PyObject *key, PyObject *access_type, PyObject *site,
          PyObject *value, PyObject *stack, PyObject *trace)
{
    PyObject *pend = SLOT(ent, E_pend);
    if (pend == NULL || !PyList_CheckExact(pend))
        return 0;
    if (PyList_GET_SIZE(pend) + pend_fields >= pend_max * pend_fields)
        return 0; /* the bound is reached: the Python path emits them */
    PyObject *kept = novalue;
    Py_INCREF(kept);
    if (value != novalue) {
        PyObject *v = NULL;
        int ok = cheap_value(value, &v);
        if (ok == -1) {
            Py_DECREF(kept);
            return -1;
        }
        if (ok == -2) {
            Py_DECREF(kept);
            return 0;
        }
        if (ok == 1) {
            Py_DECREF(kept);
            kept = v;
        }
    }
    PyObject *ts = time_ns_obj();
    PyObject *vc = SLOT(state, T_vc);
    if (ts == NULL || vc == NULL) {
        Py_XDECREF(ts);
        Py_DECREF(kept);
        return ts == NULL ? -1 : 0;
    }
    PyObject *fields[9] = {trace, ts, vc, state, key, site, access_type, stack, kept};
    int rc = 1;
    for (int i = 0; i < 9; i++) { /* no Python code runs in between: atomic under the GIL */
        if (PyList_Append(pend, fields[i]) < 0) {
            rc = -1;
            break;
        }
    }
    Py_DECREF(ts);
    Py_DECREF(kept);
    return rc;
}

static PyObject *
new_dict5(PyObject *k1, PyObject *v1, PyObject *k2, PyObject *v2, PyObject *k3, PyObject *v3,
          PyObject *k4, PyObject *v4, PyObject *k5, PyObject *v5)
{
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    if (PyDict_SetItem(d, k1, v1) || PyDict_SetItem(d, k2, v2) || PyDict_SetItem(d, k3, v3) ||
        PyDict_SetItem(d, k4, v4) || PyDict_SetItem(d, k5, v5)) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

/* The emit path: one StateChange event into the outbox. 1 done, 0 not applicable, -1 error. */
static int
emit(PyObject *state, PyObject *ent, PyObject *key, PyObject *access_type, PyObject *site,
     PyObject *value, PyObject *stack, PyObject *cached, PyObject *trace)
{
    PyObject *new_value = Py_None;
    int valued = value != novalue;
    if (valued) {
        int ok = cheap_value(value, &new_value);
        if (ok == -1)
            return -1;
        if (ok == -2)
            return 0;
        if (ok == 0) {
            new_value = Py_None;
            Py_INCREF(new_value);
        }
    }
    else
        Py_INCREF(new_value);
    int rc = -1, owned = 0;
    PyObject *ext = NULL, *data = NULL, *entry = NULL, *ev = NULL, *id = NULL, *ts = NULL,
             *last = NULL;
    PyObject *datas = NULL, *task = NULL, *vc = NULL, *func = NULL, *location = NULL;
    /* the metadata first: _meta() is Python (other threads may run meanwhile), every borrowed
     * read below happens after it, with no Python code in between */
    PyObject *meta = SLOT(state, T_meta);
    PyObject *meta_gen = SLOT(state, T_meta_gen);
    PyObject *gen = get_global(G, n_meta_gen);
    if (gen == NULL || meta_gen == NULL)
        goto done;
    if (meta == NULL || meta == Py_None || PyObject_RichCompareBool(meta_gen, gen, Py_EQ) != 1) {
        if (PyErr_Occurred())
            goto done;
        PyObject *fn = get_global(G, n_meta);
        if (fn == NULL)
            goto done;
        meta = PyObject_CallOneArg(fn, state);
        if (meta == NULL)
            goto done;
    }
    else
        Py_INCREF(meta);
    datas = SLOT(state, T_datas);
    task = SLOT(state, T_id);
    vc = SLOT(state, T_vc);
    func = SLOT(site, S_func);
    location = SLOT(site, S_location);
    if (datas == NULL || !PyDict_CheckExact(datas) || task == NULL || vc == NULL ||
        func == NULL || location == NULL) {
        Py_DECREF(meta);
        rc = 0;
        goto done;
    }
    /* owned from here: an allocation below may run the collector, whose finalizers may take
     * a lock on this thread (a release replaces the task's clock) */
    Py_INCREF(datas);
    Py_INCREF(task);
    Py_INCREF(vc);
    Py_INCREF(func);
    Py_INCREF(location);
    owned = 1;
    last = PyDict_GetItemWithError(datas, site); /* borrowed */
    if (last == NULL && PyErr_Occurred()) {
        Py_DECREF(meta);
        goto done;
    }
    if (last != NULL && (!PyTuple_CheckExact(last) || PyTuple_GET_SIZE(last) != 5))
        last = NULL;
    Py_XINCREF(last); /* owned: see above */
    if (last != NULL && PyTuple_GET_ITEM(last, 0) == cached && PyTuple_GET_ITEM(last, 3) == stack) {
        ext = PyTuple_GET_ITEM(last, 4);
        Py_INCREF(ext);
    }
    else {
        ext = new_dict5(k_loc, PyTuple_GET_ITEM(cached, 0), k_func, func, k_stack, stack, k_task,
                        task, k_trusted, Py_True);
        if (ext == NULL) {
            Py_DECREF(meta);
            goto done;
        }
    }
    /* a value-less payload is shared with the task's last one at this site while they repeat */
    if (!valued && last != NULL && PyTuple_GET_ITEM(last, 0) == cached &&
        PyTuple_GET_ITEM(last, 1) == access_type) {
        data = PyTuple_GET_ITEM(last, 2);
        Py_INCREF(data);
    }
    else {
        data = new_dict5(k_variable, PyTuple_GET_ITEM(cached, 1), k_old, Py_None, k_new, new_value,
                         k_location, location, k_access_type, access_type);
        if (data == NULL) {
            Py_DECREF(meta);
            goto done;
        }
    }
    if (valued) /* the ext to share; no data to share (None never matches) */
        entry = PyTuple_Pack(5, cached, Py_None, Py_None, stack, ext);
    else
        entry = PyTuple_Pack(5, cached, access_type, data, stack, ext);
    if (entry == NULL || PyDict_SetItem(datas, site, entry) < 0) {
        Py_DECREF(meta);
        goto done;
    }
    id = new_event_id();
    ts = id ? time_ns_obj() : NULL;
    if (ts == NULL) {
        Py_DECREF(meta);
        goto done;
    }
    PyObject *argv[10] = {id, trace, Py_None, ts, s_statechange, data, meta, vc, no_locks, ext};
    ev = PyObject_Vectorcall(event_type, argv, 10, NULL);
    Py_DECREF(meta);
    if (ev == NULL || PyList_Append(outbox, ev) < 0)
        goto done;
    PyObject *counter = get_global(G, n_emitted);
    if (counter == NULL)
        goto done;
    PyObject *n = PyIter_Next(counter);
    if (n == NULL && PyErr_Occurred())
        goto done;
    Py_XDECREF(n);
    rc = 1;
done:
    if (owned) {
        Py_DECREF(datas);
        Py_DECREF(task);
        Py_DECREF(vc);
        Py_DECREF(func);
        Py_DECREF(location);
    }
    Py_XDECREF(last);
    Py_DECREF(new_value);
    Py_XDECREF(ext);
    Py_XDECREF(data);
    Py_XDECREF(entry);
    Py_XDECREF(ev);
    Py_XDECREF(id);
    Py_XDECREF(ts);
    return rc;
}

/* _box.wake() with the thread marked busy (it may start the drainer thread) */
static int
wake_drainer(PyObject *tid)
{
    PyObject *one = PyLong_FromLong(1);
    if (one == NULL || PyDict_SetItem(busy, tid, one) < 0) {
        Py_XDECREF(one);
        return -1;
    }
    Py_DECREF(one);
    PyObject *r = PyObject_CallMethodNoArgs(box, n_wake);
    int rc = r == NULL ? -1 : 0;
    Py_XDECREF(r);
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    if (PyDict_DelItem(busy, tid) < 0)
        PyErr_Clear();
    PyErr_Restore(et, ev, tb);
    return rc;
}

/* ------------------------------------------------------------------------------ the hook */

/* _recorder._access_slow(state, obj, ent, key, access_type, site, value, up, checked); ``up``
 * counted the Python way has one frame less here: this function has none. */
static PyObject *
python_path(PyObject *state, PyObject *obj, PyObject *ent, PyObject *key, PyObject *access_type,
            PyObject *site, PyObject *value, long up, PyObject *skey)
{
    PyObject *fn = get_global(G, n_slow);
    if (fn == NULL)
        return NULL;
    Py_INCREF(fn);
    PyObject *upo = PyLong_FromLong(up - 1);
    if (upo == NULL) {
        Py_DECREF(fn);
        return NULL;
    }
    PyObject *argv[9] = {state, obj,  ent ? ent : Py_None, key, access_type, site, value, upo,
                         skey ? skey : Py_None};
    PyObject *r = PyObject_Vectorcall(fn, argv, 9, NULL);
    Py_DECREF(fn);
    Py_DECREF(upo);
    return r;
}

static PyObject *
internal_error(void)
{
    PyErr_Clear();
    PyObject *fn = get_global(G, n_error);
    if (fn == NULL)
        return NULL;
    return PyObject_CallNoArgs(fn);
}

/* 1: the entry still describes obj (not a dead object with the same id), 0: not, -1 error */
static int
alive_is(PyObject *ent, PyObject *obj)
{
    PyObject *ref = SLOT(ent, E_ref);
    if (ref == NULL)
        return 0;
    if (ref == Py_None)
        return SLOT(ent, E_strong) == obj;
    if (!PyWeakref_Check(ref))
        return 0;
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *target;
    if (PyWeakref_GetRef(ref, &target) < 0)
        return -1;
    int same = target == obj;
    Py_XDECREF(target);
    return same;
#else
    return PyWeakref_GetObject(ref) == obj;
#endif
}

/* The fast paths (see the top of this file): 1 done, 0 the Python path decides, -1 error. */
static int
fast_path(PyObject *state, PyObject *ent, PyObject *key, PyObject *access_type, PyObject *site,
          PyObject *value, long up, PyObject *skey, PyObject *seen, PyObject *tid)
{
    PyObject *kind = SLOT(site, S_kind);
    PyObject *name = SLOT(site, S_name);
    if (kind == NULL || name == NULL || !PyUnicode_Check(name) || PyUnicode_GET_LENGTH(name) != 0)
        return 0;
    if (!PyUnicode_CheckExact(key)) {
        int is_item = kind == item_kind || PyUnicode_Compare(kind, item_kind) == 0;
        if (PyErr_Occurred())
            return -1;
        if (!is_item || !(PyLong_CheckExact(key) || key == all_key))
            return 0; /* the key may need normalising */
    }
    if (SLOT(state, T_loop) != Py_None)
        return 0; /* an event-loop task: segments, named in _record */
    PyObject *defer = get_global(G, n_defer);
    PyObject *trace = defer ? get_global(G, n_trace) : NULL;
    if (trace == NULL)
        return -1;
    PyObject *owner = SLOT(ent, E_owner);
    int rc;
    if (owner != NULL && owner != Py_None) {
        if (owner != state || defer != Py_True)
            return 0; /* a second task: what the first one held back goes first */
        PyObject *stack = cached_stack(state, site, up);
        if (stack == NULL)
            return PyErr_Occurred() ? -1 : 0;
        Py_INCREF(stack);
        Py_INCREF(trace);
        rc = hold_back(state, ent, key, access_type, site, value, stack, trace);
        Py_DECREF(trace);
        Py_DECREF(stack);
    }
    else {
        PyObject *batched = get_global(G, n_batched);
        if (batched == NULL)
            return -1;
        if (batched != Py_True)
            return 0;
        PyObject *locs = SLOT(ent, E_locs);
        if (locs == NULL || !PyDict_CheckExact(locs))
            return 0;
        PyObject *cached = PyDict_GetItemWithError(locs, key);
        if (cached == NULL)
            return PyErr_Occurred() ? -1 : 0;
        if (!PyTuple_CheckExact(cached) || PyTuple_GET_SIZE(cached) != 2)
            return 0;
        PyObject *stack = cached_stack(state, site, up);
        if (stack == NULL)
            return PyErr_Occurred() ? -1 : 0;
        Py_INCREF(cached);
        Py_INCREF(stack);
        Py_INCREF(trace); /* emit() runs Python code (_meta): a set_trace() may rebind it */
        rc = emit(state, ent, key, access_type, site, value, stack, cached, trace);
        Py_DECREF(trace);
        Py_DECREF(cached);
        Py_DECREF(stack);
        if (rc == 1) {
            PyObject *drain = get_global(G, n_drain_at);
            if (drain == NULL)
                return -1;
            Py_ssize_t at = PyLong_AsSsize_t(drain);
            if (at == -1 && PyErr_Occurred())
                return -1;
            if (PyList_GET_SIZE(outbox) >= at && wake_drainer(tid) < 0)
                return -1;
        }
    }
    if (rc == 1 && PyDict_SetItem(seen, skey, Py_True) < 0)
        return -1;
    return rc;
}

static PyObject *
hook_access(PyObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (!bound) {
        PyErr_SetString(PyExc_RuntimeError, "raceway _speedups: not bound");
        return NULL;
    }
    if (nargs < 4 || nargs > 6) {
        PyErr_Format(PyExc_TypeError, "hook_access() takes 4 to 6 positional arguments (%zd given)",
                     nargs);
        return NULL;
    }
    PyObject *obj = args[0], *key = args[1], *access_type = args[2], *site = args[3];
    PyObject *value = nargs > 4 ? args[4] : novalue;
    PyObject *upo = nargs > 5 ? args[5] : NULL;
    if (kwnames != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            PyObject *kw = PyTuple_GET_ITEM(kwnames, i);
            int is_value = PyUnicode_CompareWithASCIIString(kw, "value") == 0;
            if ((is_value && nargs > 4) ||
                (!is_value && (PyUnicode_CompareWithASCIIString(kw, "up") != 0 || nargs > 5))) {
                PyErr_Format(PyExc_TypeError, "hook_access() got an unexpected or repeated keyword "
                             "argument %R", kw);
                return NULL;
            }
            if (is_value)
                value = args[nargs + i];
            else
                upo = args[nargs + i];
        }
    }
    long up = 3;
    if (upo != NULL) {
        up = PyLong_AsLong(upo);
        if (up == -1 && PyErr_Occurred())
            return NULL;
    }
    PyObject *sink = get_global(G, n_sink);
    if (sink == NULL)
        return NULL;
    if (sink == Py_None)
        Py_RETURN_NONE;
    PyObject *state = NULL;
    if (PyContextVar_Get(current, NULL, &state) < 0)
        return NULL;
    if (state == NULL || state == Py_None) {
        Py_XDECREF(state);
        PyObject *lazy = get_global(G, n_lazy);
        if (lazy == NULL)
            return NULL;
        state = PyObject_CallNoArgs(lazy);
        if (state == NULL)
            return NULL;
    }
    PyObject *result = NULL, *ent = NULL, *skey = NULL, *tid = NULL, *seen = NULL;
    PyObject *idkey = PyLong_FromVoidPtr(obj);
    if (idkey == NULL)
        goto done;
    ent = PyDict_GetItemWithError(table, idkey);
    Py_DECREF(idkey);
    if (ent == NULL && PyErr_Occurred())
        goto done;
    if (ent != NULL && Py_TYPE(ent) != entry_type)
        ent = NULL; /* not ours: _identity.entry() decides */
    if (ent != NULL) {
        Py_INCREF(ent);
        int alive = alive_is(ent, obj);
        if (alive < 0)
            goto done;
        if (alive) {
            if (is_true_slot(SLOT(ent, E_skip)))
                goto none;
            PyObject *serial = SLOT(ent, E_serial);
            /* owned: a key's __hash__ may let another thread run set_trace(), which replaces
             * every task's table */
            seen = SLOT(state, T_seen);
            Py_XINCREF(seen);
            if (serial != NULL && seen != NULL && PyDict_CheckExact(seen)) {
                skey = PyTuple_Pack(4, serial, key, site, access_type);
                if (skey == NULL)
                    goto done;
                int c = PyDict_Contains(seen, skey);
                if (c == 1)
                    goto none;
                if (c < 0) { /* unhashable or hostile key: the slow path normalises it */
                    PyErr_Clear();
                    Py_CLEAR(skey);
                }
            }
        }
        else
            Py_CLEAR(ent); /* a dead object's entry: _identity.entry replaces it */
    }
    if (ent != NULL && skey != NULL && Py_TYPE(state) == state_type &&
        Py_TYPE(site) == site_type) {
        tid = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
        if (tid == NULL)
            goto done;
        int b = PyDict_Contains(busy, tid);
        if (b < 0)
            goto done;
        if (!b) {
            if (is_true_slot(SLOT(state, T_quiet)))
                goto none;
            int rc = fast_path(state, ent, key, access_type, site, value, up, skey, seen, tid);
            if (rc == 1)
                goto none;
            if (rc < 0) {
                result = internal_error();
                goto done;
            }
        }
    }
    result = python_path(state, obj, ent, key, access_type, site, value, up, skey);
    goto done;
none:
    result = Py_None;
    Py_INCREF(result);
done:
    Py_DECREF(state);
    Py_XDECREF(ent);
    Py_XDECREF(skey);
    Py_XDECREF(tid);
    Py_XDECREF(seen);
    return result;
}

/* ------------------------------------------------------------------------------ sync events */

/* _recorder.acquire / release do, for the common case, in C: a thread task, a batching sink,
 * the object's identity entry already made, no slot or a ClockSlot, the task's metadata and
 * sync payloads already made. Everything else goes to the Python py_acquire / py_release (the
 * reference), called with the same arguments: no frame of ours sits between them and the
 * caller, so ``_up`` means the same. */

static PyObject *located(PyObject *locations, PyObject *skip, Py_ssize_t max, long up);

/* _stacks.caller_location(up) as seen from the caller of the C function: a new reference,
 * or NULL with an error set. */
static PyObject *
sync_location(long up)
{
    PyObject *locations = get_global(STK, n_locations);
    PyObject *skip = locations ? get_global(STK, n_skip) : NULL;
    PyObject *maxo = skip ? get_global(STK, n_locations_max) : NULL;
    if (maxo == NULL)
        return NULL;
    if (!PyDict_CheckExact(locations)) {
        PyErr_SetString(PyExc_TypeError, "raceway _speedups: _stacks._locations is not a dict");
        return NULL;
    }
    Py_ssize_t max = PyLong_AsSsize_t(maxo);
    if (max == -1 && PyErr_Occurred())
        return NULL;
    /* owned while we allocate (a collection may let other threads run) */
    Py_INCREF(locations);
    Py_INCREF(skip);
    PyObject *loc = located(locations, skip, max, up);
    Py_DECREF(locations);
    Py_DECREF(skip);
    return loc;
}

static PyObject *
located(PyObject *locations, PyObject *skip, Py_ssize_t max, long up)
{
    PyFrameObject *f = PyEval_GetFrame(); /* borrowed: the caller's frame */
    Py_XINCREF(f);
    for (long i = 0; i < up && f != NULL; i++) {
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    while (f != NULL) {
        PyCodeObject *code = PyFrame_GetCode(f);
        PyObject *cid = PyLong_FromVoidPtr(code);
        PyObject *lasti = cid ? PyLong_FromLong(GET_LASTI(f)) : NULL;
        PyObject *key = lasti ? PyTuple_Pack(2, cid, lasti) : NULL;
        Py_XDECREF(cid);
        Py_XDECREF(lasti);
        if (key == NULL)
            goto fail;
        PyObject *hit = PyDict_GetItemWithError(locations, key); /* borrowed */
        if (hit == NULL && PyErr_Occurred()) {
            Py_DECREF(key);
            goto fail;
        }
        if (hit != NULL && PyTuple_CheckExact(hit) && PyTuple_GET_SIZE(hit) == 2 &&
            PyTuple_GET_ITEM(hit, 0) == (PyObject *)code) {
            PyObject *loc = PyTuple_GET_ITEM(hit, 1);
            Py_INCREF(loc);
            Py_DECREF(key);
            Py_DECREF(code);
            Py_DECREF(f);
            return loc;
        }
        PyObject *fn = code->co_filename;
        PyObject *inside = PyObject_CallMethodOneArg(fn, n_startswith, skip);
        int is_inside = inside == NULL ? -1 : PyObject_IsTrue(inside);
        Py_XDECREF(inside);
        if (is_inside < 0) {
            Py_DECREF(key);
            goto fail;
        }
        if (!is_inside) {
            if (PyDict_GET_SIZE(locations) >= max)
                PyDict_Clear(locations); /* bounded: code objects of many generated functions */
            PyObject *loc = PyUnicode_FromFormat("%U:%d", fn, PyFrame_GetLineNumber(f));
            PyObject *pair = loc ? PyTuple_Pack(2, (PyObject *)code, loc) : NULL;
            int rc = pair ? PyDict_SetItem(locations, key, pair) : -1;
            Py_XDECREF(pair);
            Py_DECREF(key);
            Py_DECREF(code);
            Py_DECREF(f);
            if (rc < 0) {
                Py_XDECREF(loc);
                return NULL;
            }
            return loc;
        }
        Py_DECREF(key);
        Py_DECREF(code);
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
        continue;
    fail:
        Py_DECREF(code);
        Py_DECREF(f);
        return NULL;
    }
    Py_INCREF(s_unknown_location);
    return s_unknown_location;
}

/* protocol.clock.vc_join(a, b): ``a`` itself (new reference) when it dominates, else a new
 * dict; NULL with no error set when a component is not an int (the Python path decides). */
static PyObject *
vc_join(PyObject *a, PyObject *b)
{
    PyObject *out = NULL, *comp, *n;
    Py_ssize_t pos = 0;
    while (PyDict_Next(b, &pos, &comp, &n)) {
        PyObject *mine = PyDict_GetItemWithError(a, comp);
        if (mine == NULL && PyErr_Occurred())
            goto fail;
        if (!PyLong_CheckExact(n) || (mine != NULL && !PyLong_CheckExact(mine)))
            goto fail;
        long theirs = PyLong_AsLong(n), ours = mine == NULL ? 0 : PyLong_AsLong(mine);
        if ((theirs == -1 || ours == -1) && PyErr_Occurred())
            goto fail;
        if (theirs > ours) {
            if (out == NULL && (out = PyDict_Copy(a)) == NULL)
                return NULL;
            if (PyDict_SetItem(out, comp, n) < 0)
                goto fail;
        }
    }
    if (out == NULL) {
        Py_INCREF(a);
        return a;
    }
    return out;
fail:
    Py_XDECREF(out);
    return NULL;
}

static void
set_slot(PyObject *o, Py_ssize_t off, PyObject *v)
{
    PyObject *old = SLOT(o, off);
    Py_INCREF(v);
    SLOT(o, off) = v;
    Py_XDECREF(old);
}

/* _recorder._sync_data: the event's data, shared with the object's last one of this
 * direction while object, type and location repeat. New reference, or NULL: error set, or
 * none (the Python path decides). */
static PyObject *
sync_data(PyObject *ent, PyObject *lock_type, PyObject *location, int i)
{
    /* owned: another thread may rename the object or make its pair while we allocate */
    PyObject *label = SLOT(ent, E_label);
    PyObject *pair = SLOT(ent, E_sync_data);
    if (label == NULL || pair == NULL)
        return NULL;
    Py_INCREF(label);
    if (pair == Py_None) {
        pair = PyList_New(2);
        if (pair == NULL) {
            Py_DECREF(label);
            return NULL;
        }
        Py_INCREF(Py_None);
        PyList_SET_ITEM(pair, 0, Py_None);
        Py_INCREF(Py_None);
        PyList_SET_ITEM(pair, 1, Py_None);
        set_slot(ent, E_sync_data, pair);
    }
    else
        Py_INCREF(pair);
    PyObject *data = NULL;
    if (!PyList_CheckExact(pair) || PyList_GET_SIZE(pair) != 2)
        goto done;
    data = PyList_GET_ITEM(pair, i);
    if (data != Py_None && PyDict_CheckExact(data)) {
        PyObject *loc = PyDict_GetItemWithError(data, k_location);
        PyObject *lt = loc ? PyDict_GetItemWithError(data, k_lock_type) : NULL;
        PyObject *lid = lt ? PyDict_GetItemWithError(data, k_lock_id) : NULL;
        if (lid == NULL && PyErr_Occurred()) {
            data = NULL;
            goto done;
        }
        if (lid == label && PyUnicode_CheckExact(loc) && PyUnicode_CheckExact(location) &&
            PyUnicode_CheckExact(lt) && (loc == location || PyUnicode_Compare(loc, location) == 0) &&
            (lt == lock_type || PyUnicode_Compare(lt, lock_type) == 0)) {
            Py_INCREF(data);
            goto done;
        }
    }
    data = PyDict_New();
    if (data == NULL)
        goto done;
    if (PyDict_SetItem(data, k_lock_id, label) < 0 || PyDict_SetItem(data, k_lock_type, lock_type) < 0 ||
        PyDict_SetItem(data, k_location, location) < 0) {
        Py_CLEAR(data);
        goto done;
    }
    Py_INCREF(data);
    PyList_SetItem(pair, i, data); /* steals the extra reference */
done:
    Py_DECREF(label);
    Py_DECREF(pair);
    return data;
}

/* the py_acquire / py_release fallback, with the caller's arguments */
static PyObject *
sync_python(int release, PyObject *obj, PyObject *lock_type, PyObject *slot, PyObject *upo)
{
    PyObject *fn = get_global(G, release ? n_py_release : n_py_acquire);
    if (fn == NULL)
        return NULL;
    Py_INCREF(fn);
    PyObject *argv[4] = {obj, lock_type, slot, upo};
    PyObject *r = PyObject_Vectorcall(fn, argv, upo ? 4 : 3, NULL);
    Py_DECREF(fn);
    return r;
}

/* The fast path: 1 done, 0 the Python path decides (nothing changed).
 *
 * Two phases. Preparing reads the task's and the object's clocks and makes every object the
 * operation needs, the event included; an allocation there may run the cyclic collector, hence
 * finalizers, hence other threads, so everything read is held by reference. Committing first
 * checks that the task's clock and the object's stored clock are still the ones read, and that
 * no Python releaser is inside its compare-and-set (_sync_lock); then it only stores references
 * (no allocation of a collected object, no Python code): atomic under the GIL. If anything
 * moved, the Python path takes the operation from the start. */
static int
sync_fast(int release, PyObject *obj, PyObject *lock_type, PyObject *slot, long up, PyObject *tid)
{
    PyObject *sink = get_global(G, n_sink);
    PyObject *batched = sink ? get_global(G, n_batched) : NULL;
    if (batched == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (sink == Py_None || batched != Py_True || !PyUnicode_CheckExact(lock_type))
        return 0;
    int b = PyDict_Contains(busy, tid);
    if (b != 0) {
        PyErr_Clear();
        return 0; /* re-entered: the Python path counts it */
    }
    PyObject *state = NULL;
    if (PyContextVar_Get(current, NULL, &state) < 0) {
        PyErr_Clear();
        return 0;
    }
    int rc = 0;
    PyObject *ent = NULL, *meta = NULL, *exts = NULL, *vc = NULL, *task = NULL, *stored = NULL,
             *location = NULL, *data = NULL, *newvc = NULL, *ticked = NULL, *seen = NULL,
             *trace = NULL, *id = NULL, *ts = NULL, *ev = NULL, *oid = NULL;
    if (state == NULL || Py_TYPE(state) != state_type)
        goto done;
    /* -- prepare */
    PyObject *idkey = PyLong_FromVoidPtr(obj);
    if (idkey == NULL)
        goto done;
    ent = PyDict_GetItemWithError(table, idkey);
    Py_DECREF(idkey);
    if (ent == NULL || Py_TYPE(ent) != entry_type) {
        ent = NULL;
        goto done;
    }
    Py_INCREF(ent);
    if (alive_is(ent, obj) != 1)
        goto done;
    PyObject *holder;
    Py_ssize_t off;
    if (slot == Py_None) {
        holder = ent;
        off = E_sync_vc;
    }
    else if (PyObject_TypeCheck(slot, clockslot_type)) {
        holder = slot;
        off = C_sync_vc;
    }
    else
        goto done;
    PyObject *gen = get_global(G, n_meta_gen);
    meta = SLOT(state, T_meta);
    exts = SLOT(state, T_sync_ext);
    vc = SLOT(state, T_vc);
    task = SLOT(state, T_id);
    stored = SLOT(holder, off);
    PyObject *meta_gen = SLOT(state, T_meta_gen);
    if (gen == NULL || meta == NULL || meta == Py_None || meta_gen == NULL || exts == NULL ||
        vc == NULL || task == NULL || stored == NULL) {
        meta = exts = vc = task = stored = NULL;
        goto done;
    }
    Py_INCREF(meta);
    Py_INCREF(exts);
    Py_INCREF(vc);
    Py_INCREF(task);
    Py_INCREF(stored);
    if (PyObject_RichCompareBool(meta_gen, gen, Py_EQ) != 1 || !PyTuple_CheckExact(exts) ||
        PyTuple_GET_SIZE(exts) != 2 || !PyDict_CheckExact(vc))
        goto done;
    location = sync_location(up);
    if (location == NULL)
        goto done;
    data = sync_data(ent, lock_type, location, release ? 0 : 1);
    if (data == NULL)
        goto done;
    /* release: the object's clock becomes vc joined with it; acquire: the task's does */
    if (stored != Py_None && stored != vc) {
        if (!PyDict_CheckExact(stored) || (newvc = vc_join(vc, stored)) == NULL)
            goto done;
    }
    else {
        newvc = vc;
        Py_INCREF(newvc);
    }
    if (release) { /* after the release the task ticks: a new clock, a new epoch */
        PyObject *own = PyDict_GetItemWithError(vc, task);
        long n = own == NULL ? 0 : PyLong_AsLong(own);
        if ((own == NULL || n == -1) && PyErr_Occurred())
            goto done;
        PyObject *next = PyLong_FromLong(n + 1);
        ticked = next ? PyDict_Copy(vc) : NULL;
        int failed = ticked == NULL || PyDict_SetItem(ticked, task, next) < 0;
        Py_XDECREF(next);
        if (failed)
            goto done;
        if (slot == Py_None && (oid = PyLong_FromVoidPtr(obj)) == NULL)
            goto done;
    }
    if ((release || newvc != vc) && (seen = PyDict_New()) == NULL)
        goto done;
    trace = get_global(G, n_trace);
    if (trace == NULL)
        goto done;
    Py_INCREF(trace);
    id = new_event_id();
    ts = id ? time_ns_obj() : NULL;
    if (ts == NULL)
        goto done;
    PyObject *argv[10] = {id,   trace, Py_None, ts,       release ? s_lock_release : s_lock_acquire,
                          data, meta,  release ? vc : newvc, no_locks, PyTuple_GET_ITEM(exts, release ? 0 : 1)};
    ev = PyObject_Vectorcall(event_type, argv, 10, NULL);
    if (ev == NULL)
        goto done;
    PyObject *synced = get_global(G, n_synced);
    PyObject *lock = synced ? get_global(G, n_sync_lock) : NULL;
    if (lock == NULL || !PySet_CheckExact(synced))
        goto done;
    /* -- commit: nothing below allocates a collected object or runs Python code */
    if (SLOT(state, T_vc) != vc || SLOT(holder, off) != stored)
        goto done; /* moved while we prepared */
    if (release) {
        PyObject *held = PyObject_CallMethodNoArgs(lock, n_locked); /* a C method: a bool */
        if (held != Py_False) {
            Py_XDECREF(held);
            goto done;
        }
        Py_DECREF(held);
        if (oid != NULL && PySet_Add(synced, oid) < 0)
            goto done;
        set_slot(holder, off, newvc);
    }
    if (PyList_Append(outbox, ev) < 0)
        goto done; /* no memory: the Python path tries again */
    if (release) {
        set_slot(state, T_vc, ticked);
        set_slot(state, T_seen, seen);
    }
    else if (newvc != vc) {
        set_slot(state, T_vc, newvc);
        set_slot(state, T_seen, seen);
    }
    rc = 1;
    /* -- after: counting, waking the drainer (may run Python code) */
    PyObject *counter = get_global(G, n_emitted);
    PyObject *n = counter ? PyIter_Next(counter) : NULL;
    Py_XDECREF(n);
    PyObject *drain = get_global(G, n_drain_at);
    Py_ssize_t at = drain ? PyLong_AsSsize_t(drain) : -1;
    if (!PyErr_Occurred() && PyList_GET_SIZE(outbox) >= at && wake_drainer(tid) < 0)
        rc = -1;
    if (PyErr_Occurred() && rc == 1)
        rc = -1;
done:
    if (rc == 0)
        PyErr_Clear(); /* nothing changed: the Python path takes it from the start */
    Py_XDECREF(state);
    Py_XDECREF(ent);
    Py_XDECREF(meta);
    Py_XDECREF(exts);
    Py_XDECREF(vc);
    Py_XDECREF(task);
    Py_XDECREF(stored);
    Py_XDECREF(location);
    Py_XDECREF(data);
    Py_XDECREF(newvc);
    Py_XDECREF(ticked);
    Py_XDECREF(seen);
    Py_XDECREF(trace);
    Py_XDECREF(id);
    Py_XDECREF(ts);
    Py_XDECREF(ev);
    Py_XDECREF(oid);
    return rc;
}

static PyObject *
sync_hook(int release, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    const char *name = release ? "release" : "acquire";
    if (!bound) {
        PyErr_SetString(PyExc_RuntimeError, "raceway _speedups: not bound");
        return NULL;
    }
    if (nargs < 2 || nargs > 4) {
        PyErr_Format(PyExc_TypeError, "%s() takes 2 to 4 positional arguments (%zd given)", name,
                     nargs);
        return NULL;
    }
    PyObject *obj = args[0], *lock_type = args[1];
    PyObject *slot = nargs > 2 ? args[2] : Py_None;
    PyObject *upo = nargs > 3 ? args[3] : NULL;
    if (kwnames != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            PyObject *kw = PyTuple_GET_ITEM(kwnames, i);
            if (PyUnicode_CompareWithASCIIString(kw, "slot") == 0 && nargs <= 2)
                slot = args[nargs + i];
            else if (PyUnicode_CompareWithASCIIString(kw, "_up") == 0 && nargs <= 3)
                upo = args[nargs + i];
            else {
                PyErr_Format(PyExc_TypeError,
                             "%s() got an unexpected or repeated keyword argument %R", name, kw);
                return NULL;
            }
        }
    }
    long up = 0;
    if (upo != NULL && (up = PyLong_AsLong(upo)) == -1 && PyErr_Occurred())
        return NULL;
    PyObject *tid = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    if (tid == NULL)
        return NULL;
    int rc = up >= 0 ? sync_fast(release, obj, lock_type, slot, up, tid) : 0;
    Py_DECREF(tid);
    if (rc == 1)
        Py_RETURN_NONE;
    if (rc < 0)
        return internal_error();
    return sync_python(release, obj, lock_type, slot, upo);
}

static PyObject *
sync_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    return sync_hook(0, args, nargsf, kwnames);
}

static PyObject *
sync_release(PyObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    return sync_hook(1, args, nargsf, kwnames);
}

static PyMethodDef methods[] = {
    {"bind", bind, METH_VARARGS,
     "bind(recorder_globals, events_globals, Entry, TaskState, Site, stacks_globals, ClockSlot):"
     " attach to the recorder"},
    {"acquire", (PyCFunction)(void (*)(void))sync_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(obj, lock_type, slot=None, _up=0): _recorder.acquire"},
    {"release", (PyCFunction)(void (*)(void))sync_release, METH_FASTCALL | METH_KEYWORDS,
     "release(obj, lock_type, slot=None, _up=0): _recorder.release"},
    {"hook_access", (PyCFunction)(void (*)(void))hook_access, METH_FASTCALL | METH_KEYWORDS,
     "hook_access(obj, key, access_type, site, value=_NOVALUE, up=3): _recorder.hook_access"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups", "The recorder's access hot path in C.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
