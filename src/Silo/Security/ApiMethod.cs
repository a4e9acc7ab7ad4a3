using System.Collections.Concurrent;

namespace ControlPlane.Silo.Security;

/// <summary>
/// What a gRPC method is, from its full name ("/controlplane.v1.Networks/Create"): the rule for
/// writes is every method of ours that is not a read. Reads are Get, List, Watch, Explain,
/// WaitProgrammed and Status; health and reflection (services under "grpc.") are neither audited
/// nor limited.
/// </summary>
internal sealed record ApiMethod(string Service, string Name, string Kind, bool IsWrite, bool IsInfrastructure)
{
    private static readonly ConcurrentDictionary<string, ApiMethod> Known = new(StringComparer.Ordinal);

    private static readonly HashSet<string> Reads = new(StringComparer.Ordinal) { "Get", "GetInfo", "List", "Watch", "Explain", "WaitProgrammed", "Status" };

    public static ApiMethod Of(string fullName) => Known.TryGetValue(fullName, out var known) ? known : Known.GetOrAdd(fullName, Parse);

    private static ApiMethod Parse(string fullName)
    {
        var slash = fullName.LastIndexOf('/');
        var service = slash > 0 ? fullName[(fullName[0] == '/' ? 1 : 0)..slash] : fullName;
        var name = slash >= 0 ? fullName[(slash + 1)..] : fullName;
        var infrastructure = service.StartsWith("grpc.", StringComparison.Ordinal);
        var shortService = service[(service.LastIndexOf('.') + 1)..];
        var kind = shortService switch
        {
            "Namespaces" => "Namespace",
            "Networks" => "Network",
            "Nodes" => "Node",
            "Endpoints" => "Endpoint",
            "Services" => "Service",
            "NetworkPolicies" => "NetworkPolicy",
            "ServiceEndpointSets" => "ServiceEndpoints",
            "ClusterPeers" => "ClusterPeer",
            "ServiceExports" => "ServiceExport",
            "ServiceImports" => "ServiceImport",
            _ => shortService,
        };
        return new ApiMethod(service, name, kind, !infrastructure && !Reads.Contains(name), infrastructure);
    }
}
