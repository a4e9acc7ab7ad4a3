using ControlPlane.Silo.Api;
using ControlPlane.Storage.Errors;
using ErrorCode = ControlPlane.Storage.Errors.ErrorCode;

namespace ControlPlane.Silo.Tests;

/// <summary>The resume token codec: round trips, garbage, another store's tokens, version 1.</summary>
public sealed class ResumeTokenTests
{
    [Theory]
    [InlineData("")]
    [InlineData("not base64 !!")]
    [InlineData("AQ")]
    public void ResumeToken_Garbage_IsInvalidArgument(string token)
    {
        var error = Assert.Throws<ControlPlaneException>(() => ResumeToken.Decode(token, 7, 16));
        Assert.Equal(ErrorCode.InvalidArgument, error.Code);
        Assert.Equal("resume_token", error.Field);
    }

    /// <summary>A position past the store's heads: the store lost changes the token saw (a restored backup), so the client lists again.</summary>
    [Fact]
    public void APositionAheadOfTheStore_IsOutOfRange()
    {
        var error = Assert.Throws<ControlPlaneException>(() => ControlPlane.Storage.ChangeRange.RequireReadable([3, 9], [5, 7], [0, 0]));
        Assert.Equal(ErrorCode.RevisionCompacted, error.Code);
        Assert.Contains("revision 9 of partition 1 is ahead of the store (7)", error.Message);
        Assert.Equal("resume_token", error.Field);
    }

    /// <summary>A position the change log no longer holds: the client lists again, told which field it sent.</summary>
    [Fact]
    public void APositionOlderThanTheRetainedLog_IsOutOfRange_NamingTheField()
    {
        var error = Assert.Throws<ControlPlaneException>(() => ControlPlane.Storage.ChangeRange.RequireReadable([3, 9], [5, 17], [0, 10]));
        Assert.Equal(ErrorCode.RevisionCompacted, error.Code);
        Assert.Contains("revision 9 of partition 1 is older than the retained change log (compacted up to 10)", error.Message);
        Assert.Equal("resume_token", error.Field);
    }

    [Fact]
    public void ResumeToken_RoundTrips()
    {
        long[] revisions = [0, 1, 127, 128, 1L << 40, long.MaxValue];
        Assert.Equal(revisions, ResumeToken.Decode(ResumeToken.Encode(ulong.MaxValue - 3, revisions), ulong.MaxValue - 3, revisions.Length));
    }

    [Fact]
    public void ResumeToken_OfAnotherStore_IsOutOfRange_AndAVersion1TokenIsStillRead()
    {
        long[] revisions = [5, 9];
        var error = Assert.Throws<ControlPlaneException>(() => ResumeToken.Decode(ResumeToken.Encode(1, revisions), 2, revisions.Length));
        Assert.Equal(ErrorCode.RevisionCompacted, error.Code);
        Assert.Contains("another store", error.Message);
        // Version 1: the version byte, the partition count and the revisions as varints.
        var version1 = System.Buffers.Text.Base64Url.EncodeToString([1, 2, 5, 9]);
        Assert.Equal(revisions, ResumeToken.Decode(version1, 2, revisions.Length));
    }
}
