"""Small LLVM-level helpers that let numba emit the machine code the DRR loops need.

numba widens int32 arithmetic to 64 bits and tests every index for wraparound; both stop LLVM
from turning a gather loop into 16-lane SIMD with 32-bit offsets. These helpers keep 32-bit
integers and index without tests. Callers guarantee that indices are in range.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def as_float32(typingctx, bits):
    """Reinterpret a 32-bit integer's bits as a float32 (one load gives density and material)."""
    if bits not in (types.uint32, types.int32):
        return None
    signature = types.float32(bits)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return signature, codegen


@intrinsic
def load(typingctx, array, index):
    """``array[index]`` for an int32 index, with no negative-index test: a loop of these becomes
    16-lane gathers with 32-bit offsets."""
    signature = array.dtype(array, types.int32)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.load(builder.gep(data, [builder.sext(args[1], ir.IntType(64))], inbounds=True))

    return signature, codegen


@intrinsic
def load_pair(typingctx, array, index):
    """``array[index]`` and ``array[index + 1]`` of a uint32 array as one uint64: one 8-byte read
    (the low half is ``array[index]``)."""
    signature = types.uint64(array, types.int32)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        pointer = builder.gep(data, [builder.sext(args[1], ir.IntType(64))], inbounds=True)
        return builder.load(builder.bitcast(pointer, ir.IntType(64).as_pointer()), align=4)

    return signature, codegen


@intrinsic
def madd(typingctx, a, b, c):
    """``a * b + c`` in 32-bit integers (numba widens int32 arithmetic to 64 bits, which halves
    the SIMD lanes and makes gathers take 64-bit offsets)."""
    signature = types.int32(types.int32, types.int32, types.int32)

    def codegen(context, builder, sig, args):
        return builder.add(builder.mul(args[0], args[1], flags=["nsw"]), args[2], flags=["nsw"])

    return signature, codegen


#: Size of the scratch arrays ``lane_scratch`` gives: the CPU kernel's rays per group.
LANES = 16


@intrinsic
def lane_scratch(typingctx):
    """A pointer to LANES float32 on the stack (wrap it with ``numba.carray``).

    LLVM knows stack memory aliases nothing else, so a loop that gathers from the volume and
    updates these sums still vectorizes and keeps the sums in registers; heap arrays would need
    alias checks that a gather's unknown addresses make impossible.
    """
    signature = types.CPointer(types.float32)()

    def codegen(context, builder, sig, args):
        return cgutils.alloca_once(builder, ir.FloatType(), size=LANES)

    return signature, codegen


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to bring the cache line of ``array[index]`` (int32 index) into L1 for reading.

    The rays of a group step from voxel plane to voxel plane, a fixed stride apart in memory;
    fetching a few planes ahead hides the L2 latency that the gathers would otherwise wait for.
    """
    signature = types.void(array, types.int32)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        pointer = builder.bitcast(builder.gep(data, [builder.sext(args[1], ir.IntType(64))], inbounds=True),
                                  ir.IntType(8).as_pointer())
        int32 = ir.IntType(32)
        kind = ir.FunctionType(ir.VoidType(), [pointer.type, int32, int32, int32])
        function = cgutils.get_or_insert_function(builder.module, kind, "llvm.prefetch.p0")
        builder.call(function, [pointer, int32(0), int32(3), int32(1)])
        return context.get_dummy_value()

    return signature, codegen
