/* Where a tool or agent name used by a workflow is defined (SPEC §1.1,
 * §5.1, §6.2): the workflow's own `tools` / `agents` first, then the tool
 * files the engine was given, the first one named first (toolfile.c). A
 * definition comes with the directory its relative paths start from.
 * Registered and built-in tools are the caller's next step
 * (ice__engine_tool). */
#include "engine.h"
#include "internal.h"

json_t *ice__wf_tool_def(const ice_workflow_t *wf, const char *name,
                         const char **dir) {
  json_t *def = wf->tools != NULL ? json_object_get(wf->tools, name) : NULL;

  if (def == NULL)
    return ice__toolfile_def(wf->engine, "tools", name, dir);
  if (dir != NULL)
    *dir = wf->dir;
  return def;
}

json_t *ice__wf_agent_def(const ice_workflow_t *wf, const char *name,
                          const char **dir) {
  json_t *agents = json_object_get(wf->doc, "agents");
  json_t *def = json_is_object(agents) ? json_object_get(agents, name) : NULL;

  if (def == NULL)
    return ice__toolfile_def(wf->engine, "agents", name, dir);
  if (dir != NULL)
    *dir = wf->dir;
  return def;
}
