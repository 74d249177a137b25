# Writes OUT: one "&<descriptor>," line per message type that protoc-c
# generated into HDR, so that tests can walk every message without a
# hand-kept list. Run as: cmake -DHDR=... -DOUT=... -P list_messages.cmake
file(STRINGS ${HDR} lines REGEX "^extern const ProtobufCMessageDescriptor [a-z0-9_]+;")
set(body "/* Generated from api.pb-c.h by list_messages.cmake. */\n")
foreach(l ${lines})
  string(REGEX REPLACE "^extern const ProtobufCMessageDescriptor ([a-z0-9_]+);.*" "\\1" name "${l}")
  string(APPEND body "&${name},\n")
endforeach()
file(WRITE ${OUT} "${body}")
