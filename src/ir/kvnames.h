/*
 * kvnames.h: the names of a decoder's key/value cache in the convention
 * of ONNX Runtime GenAI / Hugging Face Optimum (past_key_values.{l}.key,
 * present.{l}.value, ...), read by the language-model driver (api/lm.c)
 * and by codegen's in-place cache (codegen/kvcache.c) alike.
 */
#ifndef OCTET_IR_KVNAMES_H
#define OCTET_IR_KVNAMES_H

/* The layer l of a name "{prefix}{l}{suffix}" (l in decimal digits), or
 * -1 if the name is not of that form or l passes a million. */
long ir_kv_layer_of(const char *name, const char *prefix, const char *suffix);

#endif
