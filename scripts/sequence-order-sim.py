#!/usr/bin/env python3
"""Why a sequence rule clears all its matches when it fires
(crates/detect/src/engine/sequence.rs): the same login streams, shuffled as
four connections interleave their batches, run through the engine's
chain search with two policies after a firing, `clear` (everything) and
`retain` (keep matches newer than the chain), against the spans in time
order. Prints the firings of each. Run: python3 scripts/sequence-order-sim.py
"""
import random, bisect
def run(events, counts, W, mode):
    steps=[[] for _ in counts]; newest=0; fires=0
    for (mask,ts) in events:
        newest=max(newest,ts)
        for i,d in enumerate(steps):
            while d and d[0]+W<=newest: d.pop(0)
            if mask & (1<<i):
                bisect.insort(d, ts)
                while len(d)>counts[i]+64: d.pop(0)
        # chain
        last=steps[-1]
        if not last: continue
        end=last[-1]; bound=end; incl=True; chain=[]; ok=True
        for d,c in reversed(list(zip(steps,counts))):
            taken=0
            for h in reversed(d):
                if taken==c: break
                if not (h<=bound if incl else h<bound): continue
                if h+W<=end: break
                chain.append(h); taken+=1
            if taken<c: ok=False; break
            bound=chain[-1]; incl=False
        if not ok: continue
        fires+=1
        ls=max(chain)
        for i in range(len(steps)):
            steps[i]= [] if mode=='clear' else [h for h in steps[i] if h>ls]
    return fires
random.seed(1)
tot={'clear':0,'retain':0,'sorted':0}
worse=0
for trial in range(300):
    n=400; evs=[]
    for t in range(n):
        mask = 1 if random.random()<0.25 else 2
        evs.append((mask,t*10))
    # out of order: shuffle within batches of k across 4 streams
    arr=[]
    streams=[evs[i::4] for i in range(4)]
    # interleave chunks of random size
    idx=[0]*4
    while any(idx[i]<len(streams[i]) for i in range(4)):
        s=random.randrange(4)
        k=random.randint(1,8)
        arr+=streams[s][idx[s]:idx[s]+k]; idx[s]+=k
    c=run(arr,[5,1],10**9,'clear'); r=run(arr,[5,1],10**9,'retain'); g=run(evs,[5,1],10**9,'clear')
    tot['clear']+=c; tot['retain']+=r; tot['sorted']+=g
    if r<c: worse+=1
print(tot, 'retain<clear in', worse, 'of 300')
