"""Issue 22 investigation: graphs of a folder timed interleaved on ONNX Runtime at 1x3x480x640, with the op census
of each optimised graph (optimized_model_filepath). NAME[@all|ext|basic][#THREADS]. Usage:
python benchmarks/ort_int8_variants_time.py DIR model,trt,u8s8@all#1 ROUNDS [THREADS]"""
import sys, time, collections, statistics as st
import numpy as np, onnx, onnxruntime as ort
d = sys.argv[1]; names = sys.argv[2].split(","); rounds = int(sys.argv[3]); threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "ext": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}
sessions = {}
for n in names:
    g, _, lv = n.partition("@"); lv = lv or "all"
    lv, _, th = lv.partition("#"); th = int(th or threads)
    so = ort.SessionOptions(); so.graph_optimization_level = level[lv]
    so.intra_op_num_threads = th; so.inter_op_num_threads = 1
    so.optimized_model_filepath = f"{d}/opt-{g}-{lv}-{th}.onnx"
    sessions[n] = ort.InferenceSession(f"{d}/{g}.onnx", so, providers=["CPUExecutionProvider"])
    ops = collections.Counter(x.op_type for x in onnx.load(so.optimized_model_filepath, load_external_data=False).graph.node)
    keep = {k: v for k, v in ops.items() if k.startswith("Q") or k.startswith("Dequant") or "Conv" in k or "Integer" in k}
    print(n, dict(sorted(keep.items())), flush=True)
inp = sessions[names[0]].get_inputs()[0]
x = np.random.default_rng(0).standard_normal((1, 3, 480, 640)).astype(np.float32)
times = collections.defaultdict(list)
for n, s in sessions.items(): s.run(None, {inp.name: x})
for r in range(rounds):
    for n, s in sessions.items():
        t = time.perf_counter(); s.run(None, {inp.name: x}); times[n].append(time.perf_counter() - t)
base = st.median(times[names[0]])
for n in names:
    t = times[n]; q = np.percentile(t, [25, 75])
    print(f"{n:24s} median {1000*st.median(t):8.1f} ms  IQR {1000*q[0]:.1f}-{1000*q[1]:.1f}  speed vs {names[0]}: {base/st.median(t):.2f}x")
