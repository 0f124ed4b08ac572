-- Argo CD health check for Patchline's RebuildTrigger and ImagePolicy (kstatus conditions).
-- In argocd-cm, under both resource.customizations.health.patchline.dev_RebuildTrigger and
-- resource.customizations.health.patchline.dev_ImagePolicy.
local hs = { status = "Progressing", message = "Waiting for Patchline to report" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.message = "Waiting for Patchline to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local c = {}
for _, condition in ipairs(obj.status.conditions) do
  c[condition.type] = condition
end
local ready = c["Ready"]
if ready ~= nil and ready.reason == "Suspended" then
  hs.status = "Suspended"
  hs.message = ready.message
  return hs
end
if c["Stalled"] ~= nil and c["Stalled"].status == "True" then
  hs.status = "Degraded"
  hs.message = c["Stalled"].message
  return hs
end
if c["Reconciling"] ~= nil and c["Reconciling"].status == "True" then
  hs.status = "Progressing"
  hs.message = c["Reconciling"].message
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = ready.message
  return hs
end
return hs
