using ControlPlane.Contracts.Updates;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Tests;

/// <summary>Which address fields an update may name (pure logic; the API's own tests cover the path through a silo).</summary>
public sealed class FixedFieldsTests
{
    private static Endpoint Stored(params string[] held) => new()
    {
        Metadata = new ObjectMeta { Name = "pod", Namespace = "ns" },
        Spec = new EndpointSpec { Network = "net", Node = "node-a" },
        Status = new EndpointStatus { Ips = { held } },
    };

    private static Endpoint Naming(params string[] ips) => new()
    {
        Metadata = new ObjectMeta { Name = "pod", Namespace = "ns" },
        Spec = new EndpointSpec { Network = "net", Node = "node-a", Ips = { ips } },
    };

    [Theory]
    [InlineData("10.10.1.86", "fd00:10::156")]
    [InlineData("fd00:10::156", "10.10.1.86")]
    [InlineData("fd00:10:0:0:0:0:0:156")]
    [InlineData("FD00:10::156")]
    [InlineData("10.10.1.86")]
    public void AnEndpointUpdate_MayNameAnyOfTheAddressesItHolds_InAnyOrderAndSpelling(params string[] named)
    {
        Assert.Null(FixedFields.Changed(Stored("10.10.1.86", "fd00:10::156"), Naming(named)));
    }

    [Theory]
    [InlineData("10.10.1.87")]
    [InlineData("10.10.1.86", "fd00:10::157")]
    [InlineData("fd00:10::157", "10.10.1.86")]
    public void AnEndpointUpdate_NamingAnAddressNotHeld_IsRefusedNamingTheField(params string[] named)
    {
        var refused = FixedFields.Changed(Stored("10.10.1.86", "fd00:10::156"), Naming(named));
        Assert.NotNull(refused);
        Assert.Equal("spec.ips", refused.Value.Field);
        Assert.Equal("10.10.1.86,fd00:10::156", refused.Value.Stored);
    }

    [Fact]
    public void AServiceUpdate_KeepsItsVirtualIpsInOrder_ThePrimaryFirst()
    {
        var stored = new Service { Spec = new ServiceSpec { Network = "net", Type = ServiceType.ClusterIp, IpFamilies = { "IPv4", "IPv6" } }, Status = new ServiceStatus { ClusterIps = { "10.96.0.10", "fd00:96::10" } } };
        var swapped = new Service { Spec = new ServiceSpec { Network = "net", ClusterIps = { "fd00:96::10", "10.96.0.10" } } };
        Assert.Equal("spec.cluster_ips[0]", FixedFields.Changed(stored, swapped)?.Field);
        var spelled = new Service { Spec = new ServiceSpec { Network = "net", ClusterIps = { "10.96.0.10", "FD00:96:0::10" } } };
        Assert.Null(FixedFields.Changed(stored, spelled));
    }
}
