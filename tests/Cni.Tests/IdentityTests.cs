using ControlPlane.Contracts.Attachments;

namespace ControlPlane.Cni.Tests;

/// <summary>How containers map to endpoint names and labels (pure functions).</summary>
public sealed class IdentityTests
{
    private static CniInvocation Invocation(string containerId, string interfaceName = "eth0", string args = "") =>
        new("ADD", containerId, "/run/netns/x", interfaceName, CniArgs.Parse(args), "");

    private static readonly PluginConfig Config = new() { CniVersion = "1.1.0", Name = "blue", Network = "blue", Namespace = "tenants" };

    [Fact]
    public void Of_KubernetesArgs_NamespaceAndPodName()
    {
        var identity = EndpointIdentity.Of(Invocation("abc", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1"), Config);
        Assert.Equal(("shop", "web-1"), (identity.Namespace, identity.Name));
    }

    [Fact]
    public void Of_NoKubernetesArgs_ConfiguredNamespaceAndContainerId()
    {
        var identity = EndpointIdentity.Of(Invocation("cnitool-0a1b2c"), Config);
        Assert.Equal(("tenants", "cnitool-0a1b2c"), (identity.Namespace, identity.Name));
    }

    [Fact]
    public void Of_SecondInterface_NameCarriesTheInterface()
    {
        Assert.Equal("web-1-net1", EndpointIdentity.Of(Invocation("abc", "net1", "K8S_POD_NAME=web-1"), Config).Name);
        Assert.NotEqual(EndpointIdentity.Of(Invocation("abc", "eth0"), Config).Name, EndpointIdentity.Of(Invocation("abc", "eth1"), Config).Name);
    }

    [Theory]
    [InlineData("0f6d9d0aa2153629d9cfba6db847b39fa51afc60de4ea351c07abd5c2cde2358")] // podman's 64 hex digits: one label too long
    [InlineData("My_Container")]
    [InlineData("-.-")]
    [InlineData("a..b")]
    public void EndpointName_NotASubdomain_CleanedCutAndDigested(string wanted)
    {
        var name = EndpointIdentity.EndpointName(wanted);
        Assert.Matches("^[a-z0-9]([a-z0-9.-]{0,52}[a-z0-9])?-[0-9a-f]{8}$", name);
        Assert.DoesNotContain("..", name, StringComparison.Ordinal);
        Assert.True(name.Length <= 63);
        Assert.Equal(name, EndpointIdentity.EndpointName(wanted));
    }

    [Fact]
    public void EndpointName_DifferentOriginalsCleanedAlike_StayDistinct()
    {
        Assert.NotEqual(EndpointIdentity.EndpointName("Web_1"), EndpointIdentity.EndpointName("web_1"));
        Assert.Equal("web-1.blue", EndpointIdentity.EndpointName("web-1.blue"));
    }

    [Fact]
    public void AttachmentLabels_LongContainerId_ExactKeyAndReadableCut()
    {
        var id = new string('a', 62) + "_b-";
        var labels = AttachmentLabels.For(id, "eth0").ToDictionary();
        Assert.Equal(40, labels[AttachmentLabels.Attachment].Length);
        Assert.Equal(new string('a', 62), labels[AttachmentLabels.ContainerId]);
        Assert.NotEqual(AttachmentLabels.Key(id, "eth0"), AttachmentLabels.Key(id, "eth1"));
        Assert.NotEqual(AttachmentLabels.Key(id, "eth0"), AttachmentLabels.Key(id + "x", "eth0"));
    }

    [Fact]
    public void RequestedIps_CapabilityWinsOverCniArgs_PrefixDropped()
    {
        var args = CniArgs.Parse("IP=10.1.0.9/24");
        Assert.Equal(["10.1.0.9"], Config.RequestedIps(args));
        Assert.Equal(["10.1.0.7", "fd00::7"], (Config with { Ips = ["10.1.0.7/16", "fd00:0::7"] }).RequestedIps(args));
        Assert.Empty(Config.RequestedIps(CniArgs.Empty));
    }
}
