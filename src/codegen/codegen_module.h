/*
 * codegen_module.h: the compiled-module record shared by compile.c (which
 * builds it) and emit.c (which writes its artifacts and the signature).
 */
#ifndef OCTET_CODEGEN_MODULE_H
#define OCTET_CODEGEN_MODULE_H

#include "codegen.h"

struct cg_module {
    oct_ctx *ctx;
    const ir_model *model;
    const char *name;
    cg_tensor *tens;            /* by value id */
    uint64_t scratch_size;
    const char *triple, *cpu, *features;
    char *signature;            /* JSON, in the arena */
    LLVMContextRef llc;
    LLVMModuleRef mod;
    LLVMTargetMachineRef tm;
};

/* Builds cm->signature: {"name", "scratch_size", "alignment", "inputs":
 * [{"name", "dtype" (numpy spelling), "shape", "bytes"}], "outputs": [...]} */
oct_status cg_signature(cg_module *cm);

#endif
