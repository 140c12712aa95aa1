#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build of kmem-verify's fuzz targets (see fuzz/oss-fuzz/README.md).
#
# $OUT gets:
#   kmem-harness/                 the harness, published self-contained (no .NET needed at run time),
#                                 with only the assemblies under test instrumented by SharpFuzz
#   kmem_driver.bin               libfuzzer-dotnet compiled with $LIB_FUZZING_ENGINE (the .bin
#                                 extension keeps it from being taken for a fuzz target itself)
#   kmem_scenario_fuzzer          bytes -> BinaryCodec -> runner against the reference allocator
#   kmem_parser_fuzzer            bytes -> the .kmem parser (anything but ScenarioException is a crash)
#   *_seed_corpus.zip, *.dict     seeds and AFL/libFuzzer dictionaries
# Each target is a shell wrapper (as OSS-Fuzz's JVM and Python targets are): libfuzzer-dotnet
# takes the managed program as --target_path, and the harness reads its options from KMEM_FUZZ_*.
cd "$SRC/kmem-verify"

dotnet tool restore
harness="$OUT/kmem-harness"
rm -rf "$harness"
dotnet publish fuzz/Kmem.Fuzz/Kmem.Fuzz.csproj -c Release -r linux-x64 --self-contained true -o "$harness"
# The same list as fuzz/setup.sh.
for a in Kmem.Scenarios Kmem.Target Kmem.Model Kmem.Reference Kmem.Zoo Kmem.Runner; do
  dotnet sharpfuzz "$harness/$a.dll"
done

$CXX $CXXFLAGS "$SRC/libfuzzer-dotnet/libfuzzer-dotnet.cc" -o "$OUT/kmem_driver.bin" $LIB_FUZZING_ENGINE

wrapper() { # NAME, then KMEM_FUZZ_* assignments
  local name=$1; shift
  {
    echo '#!/bin/bash'
    echo '# LLVMFuzzerTestOneInput -- marks this wrapper as a fuzz target for OSS-Fuzz.'
    echo 'here="$(dirname "$(readlink -f "$0")")"'
    for kv in "$@"; do echo "export $kv"; done
    echo 'exec "$here/kmem_driver.bin" --target_path="$here/kmem-harness/Kmem.Fuzz" "$@"'
  } > "$OUT/$name"
  chmod +x "$OUT/$name"
}
wrapper kmem_scenario_fuzzer KMEM_FUZZ_HARNESS=scenario KMEM_FUZZ_TARGET=reference KMEM_FUZZ_OPS=all KMEM_FUZZ_MODE=libfuzzer
wrapper kmem_parser_fuzzer KMEM_FUZZ_HARNESS=parser KMEM_FUZZ_MODE=libfuzzer

(cd corpus/seeds && zip -qr "$OUT/kmem_scenario_fuzzer_seed_corpus.zip" .)
(cd corpus/examples && zip -qr "$OUT/kmem_parser_fuzzer_seed_corpus.zip" .)
cp fuzz/kmem.dict "$OUT/kmem_scenario_fuzzer.dict"
cp fuzz/kmem-text.dict "$OUT/kmem_parser_fuzzer.dict"
