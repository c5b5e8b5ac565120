"""squeezenet1.1 single-threaded CPU time: ONNX Runtime (FP32, one intra-op
thread) vs `octet run` (reference interpreter), both measured as process CPU
time so a loaded machine skews both alike.  Not a CTest test (timing is
noisy); run by hand: bench_squeezenet.py [path/to/octet]
"""
import onnxruntime as ort, onnx, numpy as np, time, subprocess, resource, sys, os
from onnx import numpy_helper as nh
M=os.path.join(os.environ.get('OCTET_SHARED', '../shared'), 'models', 'squeezenet1.1') + '/'
OCT=sys.argv[1] if len(sys.argv)>1 else os.environ.get('OCTET', 'build/octet')
o=ort.SessionOptions(); o.intra_op_num_threads=1; o.inter_op_num_threads=1
s=ort.InferenceSession(M+'model.onnx', o, providers=['CPUExecutionProvider'])
x=nh.to_array(onnx.load_tensor(M+'test_data_set_0/input_0.pb'))
for _ in range(5): s.run(None,{'data_0':x})
def ort_cpu(n=40):
    t=time.process_time()
    for _ in range(n): s.run(None,{'data_0':x})
    return (time.process_time()-t)/n*1e3
def oct_cpu(n):
    r0=resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([OCT,'run',M+'model.onnx','--input','data_0='+M+'test_data_set_0/input_0.pb','--repeat',str(n),'--time'],capture_output=True,check=True)
    r1=resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r1.ru_utime+r1.ru_stime)-(r0.ru_utime+r0.ru_stime)
res=[]
for _ in range(3):
    a=ort_cpu()
    b=(oct_cpu(41)-oct_cpu(1))/40*1e3
    res.append((a,b))
    print('ort %.2f ms cpu, octet %.2f ms cpu, ratio %.2f'%(a,b,b/a))
