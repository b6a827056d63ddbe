/* The same forward pass as lstm-serve's core, in plain C for gcc to vectorize
 * (-O3 -march=native -ffast-math): transposed weights, row-wise FMA accumulation, libm
 * activations (gcc maps expf/tanhf to libmvec vector calls under -ffast-math).
 *
 * weights.bin: int32 I, H, L, O; per layer W_ih (4H, in), W_hh (4H, H), b_ih (4H), b_hh (4H);
 * head W (O, H), b (O). All float32, PyTorch layout.
 *   lstm_bench DIR [window] [seconds]  */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { int in, H; float *wx, *wh, *b; } Layer; /* wx (in, 4H), wh (H, 4H), b (4H) */
static int I, H, L, O;
static Layer layers[8];
static float *head_w, *head_b; /* (H, O) transposed */

static float *readf(FILE *f, size_t n) {
    float *p = malloc(n * sizeof(float));
    if (fread(p, sizeof(float), n, f) != n) { fprintf(stderr, "short weights file\n"); exit(1); }
    return p;
}

static float *transpose(const float *m, int rows, int cols) {
    float *t = malloc((size_t)rows * cols * sizeof(float));
    for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c];
    return t;
}

static void load(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    int hdr[4];
    if (fread(hdr, sizeof(int), 4, f) != 4) exit(1);
    I = hdr[0]; H = hdr[1]; L = hdr[2]; O = hdr[3];
    for (int k = 0; k < L; k++) {
        int in = k == 0 ? I : H, G = 4 * H;
        float *wih = readf(f, (size_t)G * in), *whh = readf(f, (size_t)G * H), *bih = readf(f, G), *bhh = readf(f, G);
        layers[k].in = in; layers[k].H = H;
        layers[k].wx = transpose(wih, G, in);
        layers[k].wh = transpose(whh, G, H);
        layers[k].b = malloc(G * sizeof(float));
        for (int g = 0; g < G; g++) layers[k].b[g] = bih[g] + bhh[g];
        free(wih); free(whh); free(bih); free(bhh);
    }
    float *hw = readf(f, (size_t)O * H);
    head_w = transpose(hw, O, H);
    head_b = readf(f, O);
    fclose(f);
}

static float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

/* One timestep of one layer for one sample: gates = b + Wx x + Wh h; pointwise LSTM. */
static void cell_step(const Layer *l, const float *restrict x, float *restrict h, float *restrict c, float *restrict gates) {
    const int G = 4 * l->H, Hn = l->H;
    memcpy(gates, l->b, G * sizeof(float));
    for (int j = 0; j < l->in; j++) {
        const float xj = x[j], *restrict w = l->wx + (size_t)j * G;
        for (int g = 0; g < G; g++) gates[g] += xj * w[g];
    }
    for (int j = 0; j < Hn; j++) {
        const float hj = h[j], *restrict w = l->wh + (size_t)j * G;
        for (int g = 0; g < G; g++) gates[g] += hj * w[g];
    }
    for (int k = 0; k < Hn; k++) {
        float i = sigm(gates[k]), f = sigm(gates[Hn + k]), g = tanhf(gates[2 * Hn + k]), o = sigm(gates[3 * Hn + k]);
        c[k] = f * c[k] + i * g;
        h[k] = o * tanhf(c[k]);
    }
}

/* x (B, T, I) -> y (B, O) */
static void forward(const float *x, int B, int T, float *y, float *state, float *gates) {
    for (int b = 0; b < B; b++) {
        memset(state, 0, (size_t)L * 2 * H * sizeof(float));
        for (int t = 0; t < T; t++) {
            const float *in = x + ((size_t)b * T + t) * I;
            for (int k = 0; k < L; k++) {
                float *h = state + (size_t)k * 2 * H, *c = h + H;
                cell_step(&layers[k], in, h, c, gates);
                in = h;
            }
        }
        const float *top = state + (size_t)(L - 1) * 2 * H;
        for (int o = 0; o < O; o++) y[b * O + o] = head_b[o];
        for (int j = 0; j < H; j++) for (int o = 0; o < O; o++) y[b * O + o] += top[j] * head_w[j * O + o];
    }
}

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }

static int cmp(const void *a, const void *b) { double d = *(const double *)a - *(const double *)b; return (d > 0) - (d < 0); }

static volatile float sink;
#define MEASURE(result, body) do { \
    for (int w_ = 0; w_ < 50; w_++) { body; } \
    long calls_ = 1; \
    for (;;) { double t0_ = now(); for (long n_ = 0; n_ < calls_; n_++) { body; } if (now() - t0_ > seconds / 5) break; calls_ *= 2; } \
    double r_[5]; \
    for (int k_ = 0; k_ < 5; k_++) { double t0_ = now(); for (long n_ = 0; n_ < calls_; n_++) { body; } r_[k_] = (now() - t0_) * 1e6 / calls_; } \
    qsort(r_, 5, sizeof(double), cmp); result = r_[2]; } while (0)

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: lstm_bench DIR [window] [seconds]\n"); return 2; }
    load(argv[1]);
    int T = argc > 2 ? atoi(argv[2]) : 7;
    double seconds = argc > 3 ? atof(argv[3]) : 2;
    int B = 64;
    float *x = malloc((size_t)B * T * I * sizeof(float)), *y = malloc((size_t)B * O * sizeof(float));
    unsigned long long s = 42;
    for (long k = 0; k < (long)B * T * I; k++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[k] = (float)(s >> 40) / (float)(1 << 24) * 2 - 1;
    }
    float *state = malloc((size_t)L * 2 * H * sizeof(float)), *gates = malloc((size_t)4 * H * sizeof(float));
    double window, step, batch;
    forward(x, 1, T, y, state, gates);
    float head0 = y[0];
    MEASURE(window, (forward(x, 1, T, y, state, gates), sink += y[0]));
    memset(state, 0, (size_t)L * 2 * H * sizeof(float));
    MEASURE(step, ({ const float *in = x; for (int k = 0; k < L; k++) { float *h = state + (size_t)k * 2 * H; cell_step(&layers[k], in, h, h + H, gates); in = h; } sink += state[0]; }));
    MEASURE(batch, (forward(x, B, T, y, state, gates), sink += y[0]));
    printf("c window_b1_us=%.2f step_b1_us=%.3f window_b64_us=%.2f per_window_in_b64_us=%.3f head0=%.7f\n",
           window, step, batch, batch / B, head0);
    return 0;
}
