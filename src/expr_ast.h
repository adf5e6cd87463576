/* Private to the expression files: the AST that expr_parse.c builds and
 * expr_eval.c walks. */
#ifndef ICE_EXPR_AST_H
#define ICE_EXPR_AST_H

#include "expr.h"

#include <stddef.h>

/* ---- AST ---- */

typedef enum {
  N_LIT,
  N_LIST,
  N_OBJECT,
  N_PATH,
  N_NEG,
  N_POS,
  N_NOT,
  N_AND,
  N_OR,
  N_COND,
  N_BIN,
  N_CMP,
  N_CALL,
} node_kind;

typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FDIV, OP_MOD } bin_op;

typedef enum { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE, C_IN, C_NOTIN } cmp_op;

typedef enum {
  F_LEN,
  F_EXISTS,
  F_STR,
  F_INT,
  F_FLOAT,
  F_LOWER,
  F_UPPER,
  F_ABS,
  F_MIN,
  F_MAX,
  F_ROUND
} fn_id;

typedef enum { SEG_KEY, SEG_INDEX, SEG_EXPR } seg_kind;

typedef struct node node;

typedef struct {
  seg_kind kind;
  json_int_t index; /* SEG_INDEX: list index */
  json_t *key;      /* SEG_KEY, SEG_INDEX: key text for objects */
  node *expr;       /* SEG_EXPR */
} seg_t;

struct node {
  node_kind kind;
  int op; /* bin_op, fn_id */
  int height;
  size_t off;   /* source offset of the token that names the node */
  size_t start; /* N_PATH: the span of the path as written */
  size_t end;
  json_t *lit; /* N_LIT */
  node **kids; /* operands, elements, object values, arguments */
  size_t nkids;
  json_t **keys;      /* N_OBJECT: key strings */
  unsigned char *ops; /* N_CMP: nkids - 1 operators */
  /* N_PATH: either a top-level name or a base expression (kids[0]) */
  const char *name;
  size_t name_len;
  seg_t *segs;
  size_t nsegs;
};

struct ice__expr_s {
  char *src;
  size_t len;
  node *root;
  int root_inline; /* root (a simple path) is in this allocation */
  int in_arena;    /* this allocation is a workflow's (arena.c) */
};

/* 1-based column of byte offset off in src, in UTF-8 code points. */
int ice__expr_col(const char *src, size_t off);

#endif
