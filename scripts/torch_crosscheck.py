#!/usr/bin/env python3
# Optional cross-check (not part of the test suite): `mlpc grad` vs PyTorch autograd.
# usage: /usr/bin/python3 scripts/torch_crosscheck.py build/tools/mlpc
import torch, struct, json, subprocess, sys
torch.manual_seed(0)
V,T,E,H,N=27,3,10,200,32
p = dict(C=torch.randn(V,E), W1=torch.randn(T*E,H)*(5/3)/30**0.5, b1=torch.randn(H)*0.1,
         W2=torch.randn(H,V)*0.1, b2=torch.randn(V)*0.1, bngain=1+torch.randn(H)*0.1, bnbias=torch.randn(H)*0.1)
X = torch.randint(0,V,(N,T),dtype=torch.int32); Y=torch.randint(0,V,(N,),dtype=torch.int32)
def save(path, d):
    hdr={}; off=0; blobs=[]
    for k,t in d.items():
        b=t.contiguous().numpy().tobytes(); dt={torch.float32:'F32',torch.int32:'I32'}[t.dtype]
        hdr[k]=dict(dtype=dt,shape=list(t.shape),data_offsets=[off,off+len(b)]); off+=len(b); blobs.append(b)
    h=json.dumps(hdr).encode(); h+=b' '*((8-len(h)%8)%8)
    open(path,'wb').write(struct.pack('<Q',len(h))+h+b''.join(blobs))
def load(path):
    raw=open(path,'rb').read(); n=struct.unpack('<Q',raw[:8])[0]; hdr=json.loads(raw[8:8+n]); out={}
    for k,v in hdr.items():
        if k=='__metadata__': continue
        a,b=v['data_offsets']; out[k]=torch.frombuffer(bytearray(raw[8+n+a:8+n+b]),dtype=torch.float32).reshape(v['shape'])
    return out
save('/tmp/w.safetensors', p); save('/tmp/b.safetensors', dict(X=X,Y=Y))
subprocess.run([sys.argv[1],'grad','examples/makemore.mlp','--weights','/tmp/w.safetensors','--batch','/tmp/b.safetensors','-o','/tmp/g.safetensors'],check=True)
g=load('/tmp/g.safetensors')
for t in p.values(): t.requires_grad_(True)
emb=p['C'][X.long()].view(N,-1); hpre=emb@p['W1']+p['b1']
hp=p['bngain']*(hpre-hpre.mean(0,keepdim=True))/torch.sqrt(hpre.var(0,keepdim=True,unbiased=True)+1e-5)+p['bnbias']
logits=torch.tanh(hp)@p['W2']+p['b2']; loss=torch.nn.functional.cross_entropy(logits,Y.long()); loss.backward()
print('loss torch', loss.item(), 'mlpc', g['loss'].item())
for k,t in p.items(): print(f"{k:8s} maxabs {(t.grad-g[k]).abs().max().item():.3e}")
