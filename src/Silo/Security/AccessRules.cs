using ControlPlane.Contracts.V1;

namespace ControlPlane.Silo.Security;

/// <summary>
/// The one table of who may call what: every gRPC method the silo serves, by its full name, with
/// the permission it needs, and the check of a caller against it. A method missing from the table
/// is refused to everyone but admin (AccessRulesTests fails when a method has no rule).
/// </summary>
public static class AccessRules
{
    public static readonly IReadOnlyDictionary<string, Permission> Methods = Build();

    private static Dictionary<string, Permission> Build()
    {
        var rules = new Dictionary<string, Permission>(StringComparer.Ordinal);
        void Resource(string service, Permission write)
        {
            rules[$"/controlplane.v1.{service}/Get"] = Permission.Read;
            rules[$"/controlplane.v1.{service}/List"] = Permission.Read;
            rules[$"/controlplane.v1.{service}/Create"] = write;
            rules[$"/controlplane.v1.{service}/Update"] = write;
            rules[$"/controlplane.v1.{service}/Delete"] = write;
        }
        Resource("Namespaces", Permission.ClusterWrite);
        Resource("Networks", Permission.ClusterWrite);
        Resource("Nodes", Permission.OwnNode);
        rules["/controlplane.v1.Nodes/Delete"] = Permission.ClusterWrite;
        rules["/controlplane.v1.Nodes/Heartbeat"] = Permission.OwnNode;
        rules["/controlplane.v1.Nodes/ReportProgrammed"] = Permission.OwnNode;
        // An agent creates its workloads' endpoints not ready and updates them ready once wired.
        Resource("Endpoints", Permission.EndpointOnOwnNode);
        Resource("Services", Permission.NamespacedWrite);
        Resource("NetworkPolicies", Permission.NamespacedWrite);
        rules["/controlplane.v1.NetworkPolicies/Explain"] = Permission.Read;
        Resource("ClusterPeers", Permission.ClusterWrite);
        Resource("ServiceExports", Permission.NamespacedWrite);
        rules["/controlplane.v1.ServiceImports/Get"] = Permission.Read;
        rules["/controlplane.v1.ServiceImports/List"] = Permission.Read;
        rules["/controlplane.v1.ClusterSet/GetInfo"] = Permission.Read;
        rules["/controlplane.v1.ServiceEndpointSets/Get"] = Permission.Read;
        rules["/controlplane.v1.ServiceEndpointSets/List"] = Permission.Read;
        rules["/controlplane.v1.Watch/Watch"] = Permission.Read;
        rules["/controlplane.v1.Convergence/WaitProgrammed"] = Permission.Read;
        rules["/controlplane.v1.Convergence/Status"] = Permission.Read;
        rules["/grpc.health.v1.Health/Check"] = Permission.Read;
        rules["/grpc.health.v1.Health/Watch"] = Permission.Read;
        rules["/grpc.health.v1.Health/List"] = Permission.Read;
        rules["/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"] = Permission.Read;
        rules["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"] = Permission.Read;
        return rules;
    }

    /// <summary>Whether <paramref name="method"/> only reads (a method without a rule counts as a write).</summary>
    public static bool IsRead(string method) => Methods.TryGetValue(method, out var permission) && permission == Permission.Read;

    /// <summary>"/controlplane.v1.Endpoints/Create" → "Endpoints/Create".</summary>
    public static string Short(string method) => method.LastIndexOf('.') is var dot and >= 0 ? method[(dot + 1)..] : method.TrimStart('/');

    /// <summary>
    /// Why <paramref name="caller"/> may not call <paramref name="method"/> with
    /// <paramref name="request"/>, or null when it may. <paramref name="storedEndpointNode"/> is the
    /// node of the stored endpoint an agent's update or delete names (the caller looks it up first).
    /// </summary>
    public static string? Denial(Caller caller, string method, object? request, string? storedEndpointNode = null)
    {
        if (caller.Role == Role.Admin) return null;
        if (!Methods.TryGetValue(method, out var permission)) return $"{Who(caller)} may not call {Short(method)}: it has no access rule, so only admin may";
        if (permission == Permission.Read) return null;
        return caller.Role switch
        {
            Role.Reader => $"{Who(caller)} may only read (get, list, watch, explain, convergence status and waits); {Short(method)} is a write",
            Role.Orchestrator => permission is Permission.NamespacedWrite or Permission.EndpointOnOwnNode ? null
                : $"{Who(caller)} may only write namespaced objects (endpoints, services, network policies, service exports); {Short(method)} changes a cluster-scoped object",
            Role.Agent => AgentDenial(caller, method, permission, request, storedEndpointNode),
            _ => $"{Who(caller)} is not a known role",
        };
    }

    /// <summary>Whether the check of <paramref name="method"/> for an agent needs the stored endpoint's node.</summary>
    public static bool NeedsStoredEndpoint(Caller caller, string method) =>
        caller.Role == Role.Agent && method is "/controlplane.v1.Endpoints/Update" or "/controlplane.v1.Endpoints/Delete";

    // A reason never ends in a blank where a name is missing: HTTP/2 refuses such a header value
    // (grpc-message), and clients such as grpc-js then show no reason at all.
    private static string Names(string? node) => string.IsNullOrEmpty(node) ? "names no node" : $"names node {node}";

    private static string IsOn(string? node) => string.IsNullOrEmpty(node) ? "names no node" : $"is on node {node}";

    private static string? AgentDenial(Caller caller, string method, Permission permission, object? request, string? storedEndpointNode)
    {
        switch (permission)
        {
            case Permission.OwnNode:
                var node = request switch
                {
                    Node n => n.Metadata?.Name,
                    HeartbeatRequest h => h.Name,
                    ReportProgrammedRequest r => r.Name,
                    _ => null,
                };
                return node == caller.Name ? null
                    : $"{Who(caller)} may only register, heartbeat and report its own node; {Short(method)} {Names(node)}";
            case Permission.EndpointOnOwnNode when request is Endpoint endpoint:
                // An update names both the node it asks for and, as stored, the node it is on.
                var on = storedEndpointNode is { } stored && stored != caller.Name ? stored : endpoint.Spec?.Node;
                return on == caller.Name ? null
                    : $"{Who(caller)} may only change endpoints on its own node; endpoint {endpoint.Metadata?.Namespace}/{endpoint.Metadata?.Name} {IsOn(on)}";
            case Permission.EndpointOnOwnNode when request is DeleteRequest delete:
                return storedEndpointNode == caller.Name ? null
                    : $"{Who(caller)} may only change endpoints on its own node; endpoint {delete.Namespace}/{delete.Name} {IsOn(storedEndpointNode)}";
            default:
                return $"{Who(caller)} may only register, heartbeat and report its own node and create, update or delete endpoints on it; {Short(method)} is none of these";
        }
    }

    private static string Who(Caller caller) => caller.Role == Role.Agent
        ? $"role agent ({caller.Name})"
        : $"role {caller.Role.ToString().ToLowerInvariant()} ({caller.Name})";
}
