using ControlPlane.Grains.Validation;

namespace ControlPlane.Grains.Tests;

public sealed class NamesTests
{
    [Theory]
    [InlineData("a", true)]
    [InlineData("web-1", true)]
    [InlineData("0abc", true)]
    [InlineData("", false)]
    [InlineData("-web", false)]
    [InlineData("web-", false)]
    [InlineData("Web", false)]
    [InlineData("we_b", false)]
    [InlineData("a.b", false)]
    public void Dns1123Label_Accepts_OnlyLabels(string value, bool valid) =>
        Assert.Equal(valid, Names.Dns1123LabelError(value) is null);

    [Fact]
    public void Dns1123Label_64Characters_IsTooLong() =>
        Assert.Contains("63", Names.Dns1123LabelError(new string('a', 64)));

    [Theory]
    [InlineData("node-1.example.com", true)]
    [InlineData("node..1", false)]
    [InlineData(".node", false)]
    public void Dns1123Subdomain_Accepts_DotSeparatedLabels(string value, bool valid) =>
        Assert.Equal(valid, Names.Dns1123SubdomainError(value) is null);

    [Theory]
    [InlineData("app", true)]
    [InlineData("example.com/app", true)]
    [InlineData("app.kubernetes.io/name", true)]
    [InlineData("/app", false)]
    [InlineData("Example.com/app", false)]
    [InlineData("app!", false)]
    public void LabelKey_FollowsKubernetesSyntax(string key, bool valid) =>
        Assert.Equal(valid, Names.LabelKeyError(key) is null);

    [Theory]
    [InlineData("", true)]
    [InlineData("v1.2_beta-3", true)]
    [InlineData("-v1", false)]
    [InlineData("v 1", false)]
    public void LabelValue_MayBeEmpty_OrAQualifiedToken(string value, bool valid) =>
        Assert.Equal(valid, Names.LabelValueError(value) is null);

    [Theory]
    [InlineData("http", true)]
    [InlineData("dns-tcp", true)]
    [InlineData("8080", false)]
    [InlineData("a--b", false)]
    [InlineData("sixteen-chars-xx", false)]
    public void PortName_IsAnIanaServiceName(string name, bool valid) =>
        Assert.Equal(valid, Names.PortNameError(name) is null);
}
