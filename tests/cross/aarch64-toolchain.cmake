# aarch64-toolchain.cmake - cross-builds detrun for 64-bit Arm with Debian's
# gcc-aarch64-linux-gnu and the arm64 multiarch libraries (dpkg
# --add-architecture arm64; liblua5.4-dev:arm64 etc.); scripts/setup installs both.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# The arm64 .pc files of the multiarch packages; the host's must not be seen.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
# Run with the multiarch root (-L /), never -L /usr/aarch64-linux-gnu: that
# prefix gives the cross package's loader while libc.so.6 still comes from
# /lib/aarch64-linux-gnu (libc6:arm64, another glibc build). The two disagree
# on the layout of the loader's private data, and the first pthread_create
# walks its stack cache list forever: every run with more than one thread
# hangs at start, one thread never notices.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /)
