# Cython declarations for replica.py (compiled build only; see driftsched/ground/compiled.py):
# the replica's engine, slot and counters as C-typed fields. The .py stays the one
# implementation.

from driftsched.sim.dispatcher cimport ReplicaSlot
from driftsched.sim.engine cimport EngineBase
from driftsched.sim.enginestate cimport StepOutcome, StepPlan


cdef class Replica:
    cdef public long replica_id
    cdef public EngineBase engine
    cdef public ReplicaSlot slot
    cdef public object wake
    cdef public object batch_done
    cdef public long events
    cdef public long steps
    cdef public double busy_s
    cdef public StepPlan plan
    cdef public long run_steps
    cdef public double run_s
    cdef public StepOutcome outcome
