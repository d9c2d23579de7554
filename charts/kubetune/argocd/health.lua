-- Argo CD health check for kubetune.io Study, Round and Trial (argocd-cm keys
-- resource.customizations.health.kubetune.io_Study, _Round and _Trial).
-- Reads the kstatus conditions the operator writes: Stalled=True or Ready=False is
-- Degraded (with the reason and message), Reconciling=True is Progressing (trials
-- running), Ready=True is Healthy (a Round whose budget is spent, a Trial with a result).
local hs = {}
if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the kubetune operator to observe the " .. obj.kind
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the kubetune operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local conditions = {}
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    conditions[c.type] = c
  end
end
local function said(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end
local stalled, ready, reconciling = conditions["Stalled"], conditions["Ready"], conditions["Reconciling"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = said(stalled)
  return hs
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = said(ready)
  return hs
end
if obj.status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "The " .. obj.kind .. " failed"
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = said(reconciling)
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = said(ready)
  return hs
end
hs.status = "Progressing"
hs.message = "Waiting for the kubetune operator"
return hs
