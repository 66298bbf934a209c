# Cython declarations for enginestate.py (compiled build only; see
# driftsched/ground/compiled.py): the request, plan and outcome as C-typed fields. The .py stays
# the one implementation.


cdef class EngineRequest:
    cdef public long index
    cdef public long prompt_tokens
    cdef public long target_tokens
    cdef public long num_computed_tokens
    cdef public long num_output_tokens
    cdef public long num_blocks
    cdef public long num_preemptions
    cdef public str phase
    cdef public object prefix
    cdef public object blocks
    cdef public long cached_blocks
    cdef public object keys


cdef class StepPlan:
    cdef public long tick
    cdef public list chunks
    cdef public long decode_requests
    cdef public long decode_context_tokens
    cdef public list preempted
    cdef public list admitted
    cdef public object decodes
    cdef public object shape


cdef class StepOutcome:
    cdef public list first_token
    cdef public list finished
