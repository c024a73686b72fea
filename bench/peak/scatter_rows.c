// makemore's ScatterAdd (dC[27, 10] += demb rows by the batch's character
// ids, batch 256: 768 rows of 10 floats) as C, the vector width of the
// row updates varied: cur = 512-bit rows in four tables (mlpc before
// codegen/LowerIndex.cpp's kScatterLanes), ymm = 256-bit, xmm = 128-bit,
// mod4 / ymm_mod4 = rows dealt to the tables in turn, ymm_1tab = one table,
// runmerge = equal neighbouring indices summed in a register first.
// The indices are real contexts of names.txt, a new batch each call.
//   cc -O2 -march=native bench/peak/scatter_rows.c -o /tmp/sr && /tmp/sr [names.txt]
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec*1e-3;}
#define ROWS 768
static int idx[ROWS]; static float d[ROWS*10+16]; static float tab[4*27*16] __attribute__((aligned(64))); static float out[27*10];
static int chars[200000*3]; static int nch;
__attribute__((noinline)) void v_cur(void){
  __mmask16 m=0x3ff;
  for(int b=0;b<4;b++){float*t=tab+b*432; for(int i=0;i<432;i+=16)_mm512_storeu_ps(t+i,_mm512_setzero_ps());
    for(int j=0;j<192;j++){int r=b*192+j; float*dst=t+idx[r]*16; __m512 x=_mm512_maskz_loadu_ps(m,d+r*10); _mm512_storeu_ps(dst,_mm512_add_ps(_mm512_loadu_ps(dst),x));}}
  for(int i=0;i<27;i++){__m512 s=_mm512_loadu_ps(tab+i*16); for(int b=1;b<4;b++)s=_mm512_add_ps(s,_mm512_loadu_ps(tab+b*432+i*16)); _mm512_mask_storeu_ps(out+i*10,0x3ff,s);}
}
__attribute__((noinline)) void v_ymm(void){
  for(int b=0;b<4;b++){float*t=tab+b*432; for(int i=0;i<432;i+=16)_mm512_storeu_ps(t+i,_mm512_setzero_ps());
    for(int j=0;j<192;j++){int r=b*192+j; float*dst=t+idx[r]*16; __m256 x0=_mm256_loadu_ps(d+r*10); __m256 x1=_mm256_maskz_loadu_ps(0x3,d+r*10+8);
      _mm256_storeu_ps(dst,_mm256_add_ps(_mm256_loadu_ps(dst),x0)); _mm256_storeu_ps(dst+8,_mm256_add_ps(_mm256_loadu_ps(dst+8),x1));}}
  for(int i=0;i<27;i++){__m512 s=_mm512_loadu_ps(tab+i*16); for(int b=1;b<4;b++)s=_mm512_add_ps(s,_mm512_loadu_ps(tab+b*432+i*16)); _mm512_mask_storeu_ps(out+i*10,0x3ff,s);}
}
// interleave: entry r goes to table r%4
__attribute__((noinline)) void v_mod(void){
  __mmask16 m=0x3ff;
  for(int i=0;i<4*432;i+=16)_mm512_storeu_ps(tab+i,_mm512_setzero_ps());
  for(int r=0;r<ROWS;r++){float*dst=tab+(r&3)*432+idx[r]*16; __m512 x=_mm512_maskz_loadu_ps(m,d+r*10); _mm512_storeu_ps(dst,_mm512_add_ps(_mm512_loadu_ps(dst),x));}
  for(int i=0;i<27;i++){__m512 s=_mm512_loadu_ps(tab+i*16); for(int b=1;b<4;b++)s=_mm512_add_ps(s,_mm512_loadu_ps(tab+b*432+i*16)); _mm512_mask_storeu_ps(out+i*10,0x3ff,s);}
}
// run-merge: consecutive equal indices summed in a register
__attribute__((noinline)) void v_run(void){
  __mmask16 m=0x3ff;
  for(int b=0;b<4;b++){float*t=tab+b*432; for(int i=0;i<432;i+=16)_mm512_storeu_ps(t+i,_mm512_setzero_ps());
    int prev=idx[b*192]; __m512 acc=_mm512_maskz_loadu_ps(m,d+b*192*10);
    for(int j=1;j<192;j++){int r=b*192+j; __m512 x=_mm512_maskz_loadu_ps(m,d+r*10);
      if(idx[r]==prev){acc=_mm512_add_ps(acc,x);} else {float*dst=t+prev*16; _mm512_storeu_ps(dst,_mm512_add_ps(_mm512_loadu_ps(dst),acc)); acc=x; prev=idx[r];}}
    float*dst=t+prev*16; _mm512_storeu_ps(dst,_mm512_add_ps(_mm512_loadu_ps(dst),acc));}
  for(int i=0;i<27;i++){__m512 s=_mm512_loadu_ps(tab+i*16); for(int b=1;b<4;b++)s=_mm512_add_ps(s,_mm512_loadu_ps(tab+b*432+i*16)); _mm512_mask_storeu_ps(out+i*10,0x3ff,s);}
}

__attribute__((noinline)) void v_ymm_mod(void){
  for(int i=0;i<4*432;i+=16)_mm512_storeu_ps(tab+i,_mm512_setzero_ps());
  for(int r=0;r<ROWS;r++){float*dst=tab+(r&3)*432+idx[r]*16; __m256 x0=_mm256_loadu_ps(d+r*10); __m256 x1=_mm256_maskz_loadu_ps(0x3,d+r*10+8);
      _mm256_storeu_ps(dst,_mm256_add_ps(_mm256_loadu_ps(dst),x0)); _mm256_storeu_ps(dst+8,_mm256_add_ps(_mm256_loadu_ps(dst+8),x1));}
  for(int i=0;i<27;i++){__m512 s=_mm512_loadu_ps(tab+i*16); for(int b=1;b<4;b++)s=_mm512_add_ps(s,_mm512_loadu_ps(tab+b*432+i*16)); _mm512_mask_storeu_ps(out+i*10,0x3ff,s);}
}
__attribute__((noinline)) void v_ymm1(void){ // one table
  for(int i=0;i<432;i+=16)_mm512_storeu_ps(tab+i,_mm512_setzero_ps());
  for(int r=0;r<ROWS;r++){float*dst=tab+idx[r]*16; __m256 x0=_mm256_loadu_ps(d+r*10); __m256 x1=_mm256_maskz_loadu_ps(0x3,d+r*10+8);
      _mm256_storeu_ps(dst,_mm256_add_ps(_mm256_loadu_ps(dst),x0)); _mm256_storeu_ps(dst+8,_mm256_add_ps(_mm256_loadu_ps(dst+8),x1));}
  for(int i=0;i<27;i++){_mm512_mask_storeu_ps(out+i*10,0x3ff,_mm512_loadu_ps(tab+i*16));}
}
__attribute__((noinline)) void v_xmm(void){
  for(int b=0;b<4;b++){float*t=tab+b*432; for(int i=0;i<432;i+=16)_mm512_storeu_ps(t+i,_mm512_setzero_ps());
    for(int j=0;j<192;j++){int r=b*192+j; float*dst=t+idx[r]*16; __m128 x0=_mm_loadu_ps(d+r*10),x1=_mm_loadu_ps(d+r*10+4),x2=_mm_maskz_loadu_ps(0x3,d+r*10+8);
      _mm_storeu_ps(dst,_mm_add_ps(_mm_loadu_ps(dst),x0)); _mm_storeu_ps(dst+4,_mm_add_ps(_mm_loadu_ps(dst+4),x1)); _mm_storeu_ps(dst+8,_mm_add_ps(_mm_loadu_ps(dst+8),x2));}}
  for(int i=0;i<27;i++){__m512 s=_mm512_loadu_ps(tab+i*16); for(int b=1;b<4;b++)s=_mm512_add_ps(s,_mm512_loadu_ps(tab+b*432+i*16)); _mm512_mask_storeu_ps(out+i*10,0x3ff,s);}
}
int main(int argc,char**argv){
  // contexts from names: build windows of 3 from names.txt
  FILE*f=fopen(argc>1?argv[1]:"../shared/data/names.txt","r"); if(!f){perror("names.txt");return 1;} char line[64];
  while(fgets(line,64,f)&&nch<590000){int c0=0,c1=0,c2=0; for(char*p=line;*p&&*p!='\n';p++){chars[nch++]=c0;chars[nch++]=c1;chars[nch++]=c2; c0=c1;c1=c2;c2=*p-'a'+1;} chars[nch++]=c0;chars[nch++]=c1;chars[nch++]=c2;}
  int windows=nch/3; srand(1); for(int i=0;i<ROWS*10;i++)d[i]=rand()/(float)RAND_MAX;
  void(*fs[7])(void)={v_cur,v_ymm,v_mod,v_run,v_ymm_mod,v_ymm1,v_xmm}; const char*nm[7]={"cur","ymm","mod4","runmerge","ymm_mod4","ymm_1tab","xmm"};
  for(int rep=0;rep<3;rep++) for(int v=0;v<7;v++){ double tot=0; int N=20000;
    for(int it=0;it<N;it++){ for(int r=0;r<256;r++){int w=rand()%windows; idx[3*r]=chars[3*w];idx[3*r+1]=chars[3*w+1];idx[3*r+2]=chars[3*w+2];}
      double t0=now(); fs[v](); tot+=now()-t0;}
    printf("%-9s %.3f us\n",nm[v],tot/N);}
}
