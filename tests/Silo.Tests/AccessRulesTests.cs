using ControlPlane.Contracts.V1;
using ControlPlane.Silo.Security;
using Google.Protobuf.Reflection;

namespace ControlPlane.Silo.Tests;

/// <summary>The access rule table covers every method the silo serves, and its checks say who may do what.</summary>
public sealed class AccessRulesTests
{
    private static IEnumerable<string> Methods(FileDescriptor file) =>
        file.Services.SelectMany(s => s.Methods.Select(m => $"/{s.FullName}/{m.Name}"));

    /// <summary>Every method of api.proto, health and reflection; a new method without a rule fails here.</summary>
    private static readonly string[] Served =
    [
        .. Methods(ApiReflection.Descriptor),
        .. Methods(Grpc.Health.V1.HealthReflection.Descriptor),
        .. Methods(Grpc.Reflection.V1Alpha.ReflectionReflection.Descriptor),
    ];

    [Fact]
    public void EveryServedMethod_HasARule()
    {
        var missing = Served.Where(m => !AccessRules.Methods.ContainsKey(m)).ToList();
        Assert.True(missing.Count == 0, "methods without an access rule (add them to AccessRules): " + string.Join(", ", missing));
        Assert.True(Served.Length > 40, $"only {Served.Length} methods enumerated");
    }

    [Fact]
    public void EveryRule_NamesAMethodOfTheApi()
    {
        // Health List and reflection v1 are served by newer package versions; everything else must exist.
        var known = Served.Concat(["/grpc.health.v1.Health/List", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"]).ToHashSet();
        var stale = AccessRules.Methods.Keys.Where(k => !known.Contains(k)).ToList();
        Assert.True(stale.Count == 0, "rules for methods the API does not have: " + string.Join(", ", stale));
    }

    [Fact]
    public void Reader_MayCallOnlyReads()
    {
        var reader = new Caller("dns-1", Role.Reader, true);
        foreach (var method in Served)
        {
            var read = AccessRules.Methods[method] == Permission.Read;
            Assert.True(read == (AccessRules.Denial(reader, method, null) is null), method);
        }
        Assert.All(Served.Where(m => m.EndsWith("/Get", StringComparison.Ordinal) || m.EndsWith("/List", StringComparison.Ordinal) || m.EndsWith("/Watch", StringComparison.Ordinal)),
            m => Assert.Equal(Permission.Read, AccessRules.Methods[m]));
    }

    [Fact]
    public void Writes_AreNeverReads()
    {
        Assert.All(Served.Where(m => m.EndsWith("/Create", StringComparison.Ordinal) || m.EndsWith("/Update", StringComparison.Ordinal)
                || m.EndsWith("/Delete", StringComparison.Ordinal) || m.EndsWith("/Heartbeat", StringComparison.Ordinal)),
            m => Assert.NotEqual(Permission.Read, AccessRules.Methods[m]));
    }

    [Fact]
    public void Agent_OwnNodeOnly()
    {
        var agent = new Caller("node-1", Role.Agent, true);
        Assert.Null(AccessRules.Denial(agent, "/controlplane.v1.Nodes/Heartbeat", new HeartbeatRequest { Name = "node-1" }));
        Assert.Contains("role agent (node-1)", AccessRules.Denial(agent, "/controlplane.v1.Nodes/Heartbeat", new HeartbeatRequest { Name = "node-2" }));
        Assert.Null(AccessRules.Denial(agent, "/controlplane.v1.Nodes/Create", new Node { Metadata = new ObjectMeta { Name = "node-1" } }));
        Assert.NotNull(AccessRules.Denial(agent, "/controlplane.v1.Nodes/Delete", new DeleteRequest { Name = "node-1" }));
        Assert.Null(AccessRules.Denial(agent, "/controlplane.v1.Endpoints/Delete", new DeleteRequest { Namespace = "ns", Name = "e" }, storedEndpointNode: "node-1"));
        Assert.Equal("role agent (node-1) may only change endpoints on its own node; endpoint ns/e is on node node-2",
            AccessRules.Denial(agent, "/controlplane.v1.Endpoints/Delete", new DeleteRequest { Namespace = "ns", Name = "e" }, storedEndpointNode: "node-2"));
        // An update (an attach marks its endpoint ready) on its own node, as asked and as stored.
        var update = new Endpoint { Metadata = new ObjectMeta { Namespace = "ns", Name = "e" }, Spec = new EndpointSpec { Node = "node-1" } };
        Assert.Null(AccessRules.Denial(agent, "/controlplane.v1.Endpoints/Update", update, storedEndpointNode: "node-1"));
        Assert.Equal("role agent (node-1) may only change endpoints on its own node; endpoint ns/e is on node node-2",
            AccessRules.Denial(agent, "/controlplane.v1.Endpoints/Update", update, storedEndpointNode: "node-2"));
        update.Spec.Node = "node-2";
        Assert.Equal("role agent (node-1) may only change endpoints on its own node; endpoint ns/e is on node node-2",
            AccessRules.Denial(agent, "/controlplane.v1.Endpoints/Update", update, storedEndpointNode: "node-1"));

        // A missing name is said, not left as a trailing blank (which HTTP/2 drops with the whole reason).
        Assert.Equal("role agent (node-1) may only change endpoints on its own node; endpoint ns/e names no node",
            AccessRules.Denial(agent, "/controlplane.v1.Endpoints/Create", new Endpoint { Metadata = new ObjectMeta { Namespace = "ns", Name = "e" }, Spec = new EndpointSpec() }));
        Assert.Equal("role agent (node-1) may only register, heartbeat and report its own node; Nodes/Heartbeat names no node",
            AccessRules.Denial(agent, "/controlplane.v1.Nodes/Heartbeat", new HeartbeatRequest()));
    }

    [Fact]
    public void UnknownMethod_IsAdminOnly()
    {
        Assert.Null(AccessRules.Denial(new Caller("root", Role.Admin, true), "/x.Y/Z", null));
        Assert.Contains("no access rule", AccessRules.Denial(new Caller("o", Role.Orchestrator, true), "/x.Y/Z", null));
    }
}
