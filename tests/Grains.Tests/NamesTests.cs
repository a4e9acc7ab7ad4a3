using ControlPlane.Contracts.Naming;
using ControlPlane.Grains.Validation;
using ControlPlane.Storage.Errors;

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
        Assert.Equal(valid, NameRules.Label(value) is null);

    [Fact]
    public void Dns1123Label_64Characters_IsTooLong() =>
        Assert.Contains("63", NameRules.Label(new string('a', 64)));

    [Theory]
    [InlineData("node-1.example.com", true)]
    [InlineData("node..1", false)]
    [InlineData(".node", false)]
    public void Dns1123Subdomain_Accepts_DotSeparatedLabels(string value, bool valid) =>
        Assert.Equal(valid, NameRules.Subdomain(value) is null);

    /// <summary>A broken subdomain names the rule it breaks: a label too long is not "not lower-case".</summary>
    [Theory]
    [InlineData(64, "of at most 63 characters: one is 64")]
    [InlineData(254, "must be at most 253 characters (is 254)")]
    public void Dns1123Subdomain_TooLong_SaysWhichLimit(int length, string reason) =>
        Assert.EndsWith(reason, NameRules.Subdomain(new string('a', length)));

    [Theory]
    [InlineData("node..1", "starts or ends with '.' or holds '..'")]
    [InlineData("node.Web", "'Web' must consist of lower-case letters, digits and '-'")]
    [InlineData("node.web-", "'web-' must start and end with a letter or digit")]
    public void Dns1123Subdomain_BadLabel_SaysWhatIsWrongWithIt(string value, string reason) =>
        Assert.EndsWith(reason, NameRules.Subdomain(value));

    [Theory]
    [InlineData("app", true)]
    [InlineData("example.com/app", true)]
    [InlineData("app.kubernetes.io/name", true)]
    [InlineData("/app", false)]
    [InlineData("Example.com/app", false)]
    [InlineData("app!", false)]
    public void LabelKey_FollowsKubernetesSyntax(string key, bool valid) =>
        Assert.Equal(valid, NameRules.LabelKey(key) is null);

    [Theory]
    [InlineData("", true)]
    [InlineData("v1.2_beta-3", true)]
    [InlineData("-v1", false)]
    [InlineData("v 1", false)]
    public void LabelValue_MayBeEmpty_OrAQualifiedToken(string value, bool valid) =>
        Assert.Equal(valid, NameRules.LabelValue(value) is null);

    [Theory]
    [InlineData("http", true)]
    [InlineData("dns-tcp", true)]
    [InlineData("8080", false)]
    [InlineData("a--b", false)]
    [InlineData("sixteen-chars-xx", false)]
    public void PortName_IsAnIanaServiceName(string name, bool valid) =>
        Assert.Equal(valid, NameRules.PortName(name) is null);

    [Fact]
    public void RequireLabels_UpTo256KiBOfKeysAndValues_OneMoreIsRefused()
    {
        // 4,096 labels of a 1+3-character key and a 60-character value: exactly 262,144 bytes.
        var labels = Enumerable.Range(0, 4096).ToDictionary(i => $"k{i:x3}", _ => new string('v', 60));
        Names.RequireLabels("metadata.labels", labels);

        labels["k000"] += "v";

        var error = Assert.Throws<ControlPlaneException>(() => Names.RequireLabels("metadata.labels", labels));
        Assert.Equal(Storage.Errors.ErrorCode.InvalidArgument, error.Code);
        Assert.Equal("metadata.labels", error.Field);
    }

    [Theory]
    [InlineData(70_000, 0)]
    [InlineData(0, 70_000)]
    public void LabelErrors_ForHugeKeysAndValues_AreBounded(int prefixLength, int nameLength)
    {
        var key = (prefixLength > 0 ? new string('p', prefixLength) + "/" : "") + (nameLength > 0 ? new string('n', nameLength) : "n");
        Assert.True(NameRules.LabelKey(key)!.Length < 200);
        Assert.True(NameRules.LabelValue(new string('v', 70_000))!.Length < 200);
        Assert.True(NameRules.PortName(new string('p', 70_000))!.Length < 200);
    }
}
