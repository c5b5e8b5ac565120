/*
 * numeric_tool.c: drives the reference interpreter's float conversions
 * (src/ref/numeric.c) from a Python test.  Reads lines from stdin:
 *   e FORMAT SAT BITS   float32 with bit pattern BITS (hex) -> FORMAT code
 *   d FORMAT CODE       FORMAT code (hex) -> float32 bit pattern
 * FORMAT: f16 bf16 e4m3fn e4m3fnuz e5m2 e5m2fnuz e8m0 e2m1; SAT 0 or 1 (the
 * Cast saturate attribute; ignored by f16, bf16 and e2m1).  Prints one hex
 * number per line.
 */
#include <stdio.h>
#include <string.h>

#include "ref/ref.h"

static int format_of(const char *s, ir_dtype *dt)
{
    static const struct {
        const char *name;
        int dt;
    } map[] = {
        {"f16", IR_DT_FLOAT16}, {"bf16", IR_DT_BFLOAT16},
        {"e4m3fn", IR_DT_FLOAT8E4M3FN}, {"e4m3fnuz", IR_DT_FLOAT8E4M3FNUZ},
        {"e5m2", IR_DT_FLOAT8E5M2}, {"e5m2fnuz", IR_DT_FLOAT8E5M2FNUZ},
        {"e8m0", IR_DT_FLOAT8E8M0}, {"e2m1", IR_DT_FLOAT4E2M1},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(s, map[i].name)) {
            *dt = (ir_dtype)map[i].dt;
            return 1;
        }
    return 0;
}

int main(void)
{
    char op[4], fmt[16];
    ir_dtype dt;
    for (;;) {
        if (scanf("%3s %15s", op, fmt) != 2)
            break;
        if (!format_of(fmt, &dt)) {
            fprintf(stderr, "unknown format %s\n", fmt);
            return 1;
        }
        if (op[0] == 'e') {
            unsigned sat, bits;
            if (scanf("%u %x", &sat, &bits) != 2)
                return 1;
            float f;
            memcpy(&f, &bits, sizeof f);
            unsigned code;
            if (dt == IR_DT_FLOAT16)
                code = ops_f32_to_f16(f);
            else if (dt == IR_DT_BFLOAT16)
                code = ops_f32_to_bf16(f);
            else if (dt == IR_DT_FLOAT4E2M1)
                code = ops_f32_to_fp4(f, sat != 0);
            else
                code = ops_f32_to_fp8(dt, f, sat != 0);
            printf("%x\n", code);
        } else {
            unsigned code;
            if (scanf("%x", &code) != 1)
                return 1;
            float f;
            if (dt == IR_DT_FLOAT16)
                f = ops_f16_to_f32((uint16_t)code);
            else if (dt == IR_DT_BFLOAT16)
                f = ops_bf16_to_f32((uint16_t)code);
            else if (dt == IR_DT_FLOAT4E2M1)
                f = ops_fp4_to_f32((uint8_t)code);
            else
                f = ops_fp8_to_f32(dt, (uint8_t)code);
            unsigned bits;
            memcpy(&bits, &f, sizeof bits);
            printf("%x\n", bits);
        }
    }
    return 0;
}
